// Cluster tests wait for real processes, leases (1.5 s) and reconnects. A project's `testTimeout`
// is not applied per project, hence this setup file; the longest tests set their own.
jest.setTimeout(30_000);
