import * as assert from 'uvu/assert';

/**
 * Asserts that `promise` rejects with an instance of `type` for which `check`
 * (if given) holds; returns the error for further assertions. uvu has no async
 * counterpart of `assert.throws`.
 */
export async function rejects<E extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => E, check?: (e: E) => boolean): Promise<E> {
  let outcome: { error: unknown } | undefined;
  await promise.then(
    () => undefined,
    (error: unknown) => {
      outcome = { error };
    },
  );
  if (!outcome) return assert.unreachable(`expected a ${type.name}, but the promise resolved`) as never;
  const { error } = outcome;
  if (!(error instanceof type)) throw new assert.Assertion({ message: `expected a ${type.name}, got ${String(error)}`, operator: 'rejects', expects: type.name, actual: error, generated: false });
  if (check && !check(error)) throw new assert.Assertion({ message: `${type.name} failed the check: ${error.message}`, operator: 'rejects', expects: 'check to hold', actual: error, generated: false });
  return error;
}
