// Forking the compiled child is what production does (and ~10x faster than ts-node), so the
// node tests need dist/ to be current. ensure-built only rebuilds when sources changed.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const script = path.join(__dirname, '..', 'scripts', 'ensure-built.mjs');
module.exports = () => execFileSync(process.execPath, [script, '--server'], { stdio: 'inherit' });
