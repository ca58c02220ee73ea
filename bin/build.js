#!/usr/bin/env node
// `npm run build`: compiles the TypeScript sources (tests excluded) to JavaScript in dist/ with tsc,
// then stamps the build's start time, which bin/infaas.js compares with the sources' times.
// `--if-possible` (the `prepare` script, run by npm install/ci): a failed or impossible build
// (no typescript, as with --omit=dev; a type error) removes dist/ and warns instead of failing
// the install, and bin/infaas.js keeps running the sources through tsx.
// `--if-stale`: do nothing while dist/ is as new as the sources (cluster/quickstart.sh).
// `--out-dir <dir>`: build elsewhere (a directory inside the project, so packages still resolve).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiledCli, STAMP } from './compiled.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const lenient = args.includes('--if-possible');
const at = args.indexOf('--out-dir');
const outDir = at >= 0 ? resolve(args[at + 1]) : join(root, 'dist');
if (args.includes('--if-stale') && compiledCli(root, outDir)) process.exit(0);

function giveUp(why) {
  rmSync(outDir, { recursive: true, force: true });
  if (!lenient) { process.stderr.write(`build failed: ${why}\n`); process.exit(1); }
  process.stderr.write(`infaas: no compiled build (${why}); bin/infaas.js runs the TypeScript through tsx (slower start). Run \`npm run build\` to retry.\n`);
  process.exit(0);
}

let tsc;
try { tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc'); } catch { giveUp('typescript is not installed'); }
// Sources edited while tsc runs are newer than this, so the build counts as stale for them.
const startedMs = Date.now();
// Cleared first: the .js of a deleted source must not linger.
rmSync(outDir, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', outDir], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) giveUp(r.error ? r.error.message : `tsc exited with ${r.status ?? r.signal}`);
writeFileSync(join(outDir, STAMP), JSON.stringify({ startedMs, builtAt: new Date().toISOString() }) + '\n');
