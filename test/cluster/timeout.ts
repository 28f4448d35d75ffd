// For real processes, leases (1.5 s) and reconnects; a project's `testTimeout` is not per project.
jest.setTimeout(30_000);
