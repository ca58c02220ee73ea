// Writes schemas/json/<Name>.schema.json for clients in other languages: `npm run schemas`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allSchemas } from './index.js';

/**
 * TypeBox's schema as standard JSON Schema (draft-07), for validators in other languages:
 * - `{type: "Uint8Array"}` (MessagePack's raw bytes) is not JSON Schema, and JSON cannot carry
 *   bytes: a tensor's data in JSON is the flat number array, so the byte branch is dropped;
 * - nested `$id`s are dropped (only the document's own stays), so a type used twice in one
 *   document is not two schemas with one id;
 * - rules the code states in prose get their keywords: a query names exactly one of task, model
 *   and variant (`oneOf` of `required`).
 */
export function toJsonSchema(schema: unknown, top = true): unknown {
  if (Array.isArray(schema)) return schema.map((x) => toJsonSchema(x, false));
  if (!schema || typeof schema !== 'object') return schema;
  const o = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === '$id' && !top) continue;
    out[k] = toJsonSchema(v, false);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const list = out[key];
    if (!Array.isArray(list)) continue;
    const kept = list.filter((x) => !(x && typeof x === 'object' && (x as { type?: unknown }).type === 'Uint8Array'));
    if (kept.length === list.length) continue;
    if (kept.length === 1) { delete out[key]; Object.assign(out, kept[0] as object); } else out[key] = kept;
  }
  if (o.$id === 'Query' || (o.properties && typeof o.properties === 'object' && 'task' in o.properties && 'model' in o.properties && 'variant' in o.properties && 'slo' in o.properties)) {
    out.oneOf = [{ required: ['task'] }, { required: ['model'] }, { required: ['variant'] }];
  }
  return out;
}

export function renderSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, schema] of Object.entries(allSchemas)) {
    const doc = { $schema: 'http://json-schema.org/draft-07/schema#', title: name, ...(toJsonSchema(JSON.parse(JSON.stringify(schema))) as object) };
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
