// Forking the compiled child is what production does (and ~10x faster than ts-node), so the
// node tests need dist/ to be current. ensure-built only rebuilds when sources changed.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = function globalSetup() {
  execFileSync(
    process.execPath,
    [path.join(__dirname, '..', 'scripts', 'ensure-built.mjs'), '--server'],
    {
      stdio: 'inherit',
    },
  );
};
