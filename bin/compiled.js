// Which CLI to run: the JavaScript `npm run build` wrote into dist/, when it is at least as new as
// every TypeScript source, else none (bin/infaas.js then runs the sources through tsx).
// Checked on every start, so it only stats the source tree (a few ms) and reads two small files.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Written by bin/build.js into the output directory: when the build started and from which directories. */
export const STAMP = '.build.json';

/** The source directories tsconfig.build.json compiles (its `include`). */
export function sourceDirs(root) {
  return JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')).include;
}

/**
 * Newest modification time (ms) of the .ts files and directories under `dirs`: a directory's time
 * changes when a file in it is added, removed or renamed, so deleting a source also counts.
 */
export function newestSource(root, dirs) {
  let newest = 0;
  const walk = (dir) => {
    let entries;
    try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
    newest = Math.max(newest, statSync(dir).mtimeMs);
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) { if (e.name !== 'node_modules' && !e.name.startsWith('.')) walk(path); }
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const d of dirs) walk(join(root, d));
  return newest;
}

/** Path of the compiled CLI under `outDir` (default <root>/dist) if it exists and no source is newer than its build. */
export function compiledCli(root, outDir = join(root, 'dist')) {
  const cli = join(outDir, 'cluster', 'cli.js');
  const stampFile = join(outDir, STAMP);
  if (!existsSync(cli) || !existsSync(stampFile)) return undefined;
  let stamp;
  try { stamp = JSON.parse(readFileSync(stampFile, 'utf8')); } catch { return undefined; }
  if (!Number.isFinite(stamp.startedMs)) return undefined;
  return newestSource(root, sourceDirs(root)) < stamp.startedMs ? cli : undefined;
}
