import { LazybdError } from '../errors.js';

export class SourceDateEpochError extends LazybdError {
  constructor(value: string) {
    super('E_SOURCE_DATE_EPOCH', `SOURCE_DATE_EPOCH must be whole seconds since 1970-01-01 UTC, like \`date +%s\` prints (got ${JSON.stringify(value)})`, { exitStatus: 2 });
  }
}

/** 9999-12-31T23:59:59Z: the last second an RFC 3339 (four-digit year) timestamp can hold. */
const MAX_EPOCH_S = 253_402_300_799;

/**
 * The `created` time of a new image: `SOURCE_DATE_EPOCH` when set (the reproducible-builds
 * convention: https://reproducible-builds.org/specs/source-date-epoch/), so the same input
 * gives the same config and manifest; otherwise now. An empty value counts as unset, as
 * most tools take it; anything else that is not a plain decimal integer is refused.
 */
export function imageCreatedTime(env: NodeJS.ProcessEnv = process.env, now: () => Date = () => new Date()): string {
  const value = env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === '') return now().toISOString();
  if (!/^[0-9]+$/.test(value) || Number(value) > MAX_EPOCH_S) throw new SourceDateEpochError(value);
  return new Date(Number(value) * 1000).toISOString();
}
