// The browser tests run the built app exactly as `npm start` does, so the client must be built.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const script = path.join(__dirname, '..', '..', 'scripts', 'ensure-built.mjs');
module.exports = () => execFileSync(process.execPath, [script], { stdio: 'inherit' });
