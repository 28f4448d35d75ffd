/** The Pug shell (views/index.pug) and how the client's entry files are found for it. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import express from 'express';

import { DEV_ASSETS, findClientAssets, type ClientAssets } from '../../server/client-assets';
import { PATHS } from '../../server/paths';

const folders: string[] = [];
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function clientDir(...files: string[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-client-'));
  folders.push(dir);
  for (const file of files) writeFileSync(path.join(dir, file), '');
  return dir;
}

/** Through Express's view engine, as the server renders it. */
const views = express().set('views', PATHS.views).set('view engine', 'pug');
const render = (assets: ClientAssets, devServer = false): Promise<string> =>
  new Promise((resolve, reject) =>
    views.render('index', { assets, devServer, cspNonce: 'n0nce', token: false }, (error, html) =>
      error ? reject(error) : resolve(html),
    ),
  );

const PRODUCTION = ['main-AB12CD34.js', 'polyfills-EF56GH78.js', 'styles-IJ90KL12.css'];
test.each([
  ['a production build (hashed)', [...PRODUCTION, '3rdpartylicenses.txt']],
  ['a dev build (unhashed, mapped)', ['main.js', 'polyfills.js', 'styles.css', 'main.js.map']],
  ['no build', []],
])('finds the entries of %s', (_title, files) => {
  const [main, polyfills, styles] = files;
  expect(findClientAssets(clientDir(...files))).toEqual(main ? { main, polyfills, styles } : {});
});

test('two builds in one folder: the server refuses to start rather than guess', () => {
  expect(() => findClientAssets(clientDir(PRODUCTION[0]!, 'main-ZZ99YY88.js'))).toThrow(
    /holds main-\w+\.js and main-\w+\.js/,
  );
});

// That it says when the server needs a control token, and Vite's nonce, the integration tests'.
test('the shell links the entries, with a description, theme colours, icons and a noscript message; without a build it says how to build and loads no script; with the dev server, its names and its live reload', async () => {
  const html = await render(findClientAssets(clientDir(...PRODUCTION)));
  expect(html).toMatch(/^<!DOCTYPE html><html lang="en">/);
  const themes = ['light)" content="#f7f7f5', 'dark)" content="#121418'];
  for (const part of [
    '<title>forkcast — live stock ticker</title>',
    '<link rel="stylesheet" href="/styles-IJ90KL12.css">',
    '<app-root ngCspNonce="n0nce"><p>Loading live prices…</p><noscript><p>forkcast needs JavaScript',
    '<script src="/polyfills-EF56GH78.js" type="module"></script><script src="/main-AB12CD34.js" type="module"></script>',
    ...themes.map((theme) => `<meta name="theme-color" media="(prefers-color-scheme: ${theme}">`),
    ...['/favicon.ico', '/favicon.svg', '/apple-touch-icon.png'].map((icon) => `href="${icon}"`),
  ])
    expect(html).toContain(part);
  expect(html).toMatch(/<meta name="description" content="Live stock prices[^"]+">/);
  expect(html).not.toMatch(/@vite|csp-nonce|forkcast-control/);
  const bare = await render(findClientAssets(path.join(clientDir(), 'never-built')));
  expect(bare).toContain('The client is not built yet.');
  expect(bare).not.toMatch(/<script|<link rel="stylesheet"/);
  const dev = await render(DEV_ASSETS, true);
  expect(dev).toContain('<link rel="stylesheet" href="/styles.css">');
  expect(dev).toContain(
    '<script src="/@vite/client" type="module"></script><script src="/polyfills.js" type="module"></script><script src="/main.js" type="module"></script>',
  );
});
