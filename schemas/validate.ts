// One validator per schema (compiled once); failures become BAD_REQUEST errors that name the field.
import type { Static, TSchema } from '@sinclair/typebox';
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
  const problems = [...c.Errors(value)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}`);
  throw new InfaasError(ErrorCode.BadRequest, `invalid ${what}: ${problems.join('; ')}`, { problems });
}

export function isValid<T extends TSchema>(schema: T, value: unknown): value is Static<T> {
  return checker(schema).Check(value);
}
