// One validator per schema (compiled once); failures become BAD_REQUEST errors that name the field.
import type { Static, TSchema } from '@sinclair/typebox';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ErrorCode, InfaasError } from './errors.js';

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

/** Returns the value typed, or throws InfaasError(BAD_REQUEST) listing up to five problems. */
export function validate<T extends TSchema>(schema: T, value: unknown, what: string): Static<T> {
  const c = checker(schema);
  if (c.Check(value)) return value;
  const problems = closest(c.Errors(value), 5).map((e) => `${e.path || '/'}: ${e.message}`);
  throw new InfaasError(ErrorCode.BadRequest, `invalid ${what}: ${problems.join('; ')}`, { problems });
}

export function isValid<T extends TSchema>(schema: T, value: unknown): value is Static<T> {
  return checker(schema).Check(value);
}

/**
 * The first `limit` problems, read lazily (a hostile message can have tens of thousands). A union's
 * failure says only "Expected union value": report instead the problems of the branch that came
 * closest (fewest problems, counted up to limit + 1), e.g. a tensor's missing `data`, or a bad `ref`.
 */
function closest(errors: Iterable<ValueError>, limit: number): ValueError[] {
  const out: ValueError[] = [];
  for (const e of errors) {
    if (out.length >= limit) break;
    if (e.type !== ValueErrorType.Union || e.errors.length === 0) {
      if (!out.some((o) => o.path === e.path)) out.push(e);
      continue;
    }
    const branches = e.errors.map((it) => closest(it, limit + 1));
    const fewest = Math.min(...branches.map((b) => b.length));
    const best = branches.filter((b) => b.length === fewest);
    // Branches that each fail once at this value (bytes or numbers): one problem naming both.
    const found = fewest === 1 && best.every((b) => b[0].path === e.path) ? [{ ...best[0][0], message: best.map((b) => b[0].message).join(', or ') }] : best[0];
    for (const f of found) if (!out.some((o) => o.path === f.path)) out.push(f);
  }
  return out.slice(0, limit);
}
