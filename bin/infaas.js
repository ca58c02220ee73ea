#!/usr/bin/env node
// Entry point: runs the JavaScript that `npm run build` (also run by npm install/ci) wrote into
// dist/ while it is as new as the sources; otherwise, after an edit or without a build, loads the
// TypeScript sources through tsx as before (a few seconds slower to start).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiledCli } from './compiled.js';

const cli = compiledCli(dirname(dirname(fileURLToPath(import.meta.url))));
let main;
if (cli) ({ main } = await import(cli));
else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../cluster/cli.ts'));
}
await main();
