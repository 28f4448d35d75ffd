/**
 * The shape of the code, checked by `npm run lint` (dependency-cruiser): the contract depends
 * on nothing of ours, the ticker and the client know only the contract, and nothing imports
 * in a circle.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'protocol-is-the-contract',
      comment: 'protocol/ is what every side compiles against: it imports nothing of ours.',
      severity: 'error',
      from: { path: '^protocol/' },
      to: { path: '^(server|ticker|client|bench|test|scripts)/' },
    },
    {
      name: 'ticker-knows-only-the-contract',
      severity: 'error',
      from: { path: '^ticker/' },
      to: { path: '^(server|client|bench)/' },
    },
    {
      name: 'client-knows-only-the-contract',
      severity: 'error',
      from: { path: '^client/' },
      to: { path: '^(server|ticker|bench)/' },
    },
    {
      name: 'server-does-not-import-the-client-or-bench',
      severity: 'error',
      from: { path: '^server/' },
      to: { path: '^(client|bench)/' },
    },
    {
      name: 'bench-stands-apart',
      comment:
        "Only the bench's own tests import bench/; the product's tests have their own helpers.",
      severity: 'error',
      from: { path: '^test/', pathNot: '^test/(unit|integration)/bench[.]test[.]ts$' },
      to: { path: '^bench/' },
    },
    {
      name: 'product-does-not-import-tests',
      severity: 'error',
      from: { path: '^(protocol|server|ticker|client|bench)/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // The bench's compiled copy (npm run bench builds it there).
    exclude: { path: '^bench/build/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
