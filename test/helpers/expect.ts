// Assertions shared by the integration tests.
import type { Test } from 'tap';
import { InfaasError } from '../../schemas/errors.js';

/** Expects `p` to fail with an InfaasError of `code`; returns it for further checks. */
export async function rejectsWith(t: Test, p: Promise<unknown>, code: string, what: string): Promise<InfaasError | undefined> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, got an answer`);
  } catch (err) {
    t.ok(err instanceof InfaasError, `${what}: an InfaasError`);
    t.equal((err as InfaasError).code, code, `${what}: ${(err as Error).message}`);
    return err as InfaasError;
  }
  return undefined;
}
