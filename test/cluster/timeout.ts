// Cluster tests start real processes and wait for real leases to run out (1.5 s) and real
// reconnects. `testTimeout` in a project's config is not applied per project, so it is set
// here, in a setup file that only the cluster project loads; the longest tests set their own.
jest.setTimeout(30_000);
