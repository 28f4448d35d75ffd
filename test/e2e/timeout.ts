// Browser tests wait for real reconnects (Socket.IO backs off up to 5 s) and real pages.
// `testTimeout` in a project's config is not applied per project, so it is set here, in a
// setup file that only the e2e project loads.
jest.setTimeout(60_000);
