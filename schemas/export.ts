// Writes schemas/json/<Name>.schema.json for clients in other languages: `npm run schemas`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allSchemas } from './index.js';

export function renderSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, schema] of Object.entries(allSchemas)) {
    const doc = { $schema: 'http://json-schema.org/draft-07/schema#', title: name, ...JSON.parse(JSON.stringify(schema)) };
    out.set(`${name}.schema.json`, JSON.stringify(doc, null, 2) + '\n');
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'json');
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of renderSchemas()) writeFileSync(join(dir, file), text);
  process.stdout.write(`wrote ${allSchemas ? Object.keys(allSchemas).length : 0} schemas to ${dir}\n`);
}
