// Where the project's own files are, whether this code runs from its TypeScript sources (tsx) or
// compiled by `npm run build` into dist/: assets, scripts and thread entry files are found from here.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when this is the JavaScript that `npm run build` wrote; false under tsx. */
export const compiled = import.meta.url.endsWith('.js');

// This file is <root>/runtime/, or <out>/runtime/ with the build's output directory somewhere
// inside the project (dist/ normally): the root is the first directory up with a package.json.
function findRoot(): string {
  const start = dirname(dirname(fileURLToPath(import.meta.url)));
  if (!compiled) return start;
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return start;
  }
}

export const projectRoot = findRoot();

/** A file of the project by its path from the root, e.g. projectFile('zoo', 'models'). */
export function projectFile(...parts: string[]): string {
  return join(projectRoot, ...parts);
}
