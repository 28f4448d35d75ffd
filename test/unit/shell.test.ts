/** The Pug shell (views/index.pug) and how the client's entry files are found for it. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import express from 'express';

import { DEV_SERVER_ASSETS, findClientAssets, type ClientAssets } from '../../server/client-assets';
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
const render = (assets: ClientAssets, devServer = false, token = false): Promise<string> =>
  new Promise((resolve, reject) =>
    views.render('index', { assets, devServer, cspNonce: 'n0nce', token }, (error, html) =>
      error ? reject(error) : resolve(html),
    ),
  );

const PRODUCTION = ['main-AB12CD34.js', 'polyfills-EF56GH78.js', 'styles-IJ90KL12.css'];
test.each([
  ['a production build (hashed)', [...PRODUCTION, '3rdpartylicenses.txt']],
  ['a development build (unhashed)', ['main.js', 'polyfills.js', 'styles.css']],
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

test('the shell links the entries, with a description, theme colours, icons and a noscript message; it says when the server needs a control token, so that a tab without one only watches', async () => {
  const assets = findClientAssets(clientDir(...PRODUCTION));
  const html = await render(assets);
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
  expect(await render(assets, false, true)).toContain(
    '<meta name="forkcast-control" content="token">',
  );
});

test('without a build the shell says how to build and loads no script', async () => {
  const html = await render({});
  expect(html).toContain('The client is not built yet.');
  expect(html).not.toMatch(/<script|<link rel="stylesheet"/);
});

test('with the dev server the shell loads its names, its live reload, and gives Vite the nonce', async () => {
  const html = await render(DEV_SERVER_ASSETS, true);
  expect(html).toContain('<meta property="csp-nonce" nonce="n0nce">');
  expect(html).toContain('<link rel="stylesheet" href="/styles.css">');
  expect(html).toContain(
    '<script src="/@vite/client" type="module"></script><script src="/polyfills.js" type="module"></script><script src="/main.js" type="module"></script>',
  );
});
