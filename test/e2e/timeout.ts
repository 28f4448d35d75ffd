// Browser tests wait on a real server and real pages. A project's `testTimeout` is not applied
// per project, so this setup file, which only the e2e project loads, sets it.
jest.setTimeout(60_000);
