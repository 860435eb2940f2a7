import { readFile, writeFile, rename, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LazybdError } from '../errors.js';

/**
 * An upper belongs to the image it was first written over: `base.json` in the upper
 * directory names that image's manifest, so `commit` knows what to stack on and `serve`
 * refuses to put the upper over a different image (which would show garbage).
 */
export interface UpperBinding {
  ref: string;
  manifestDigest: string;
  virtualSize: number;
}

const FILE = 'base.json';

export class UpperBindingError extends LazybdError {
  constructor(code: 'E_UPPER_BASE_MISMATCH' | 'E_UPPER_UNBOUND', message: string) {
    super(code, message, { exitStatus: 2 });
  }
}

export async function readBinding(dir: string): Promise<UpperBinding | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, FILE), 'utf8')) as UpperBinding;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Binds a fresh upper to `base`, or checks that an existing upper was made over it. */
export async function bindUpper(dir: string, base: UpperBinding): Promise<void> {
  const existing = await readBinding(dir);
  if (existing) {
    if (existing.manifestDigest !== base.manifestDigest) {
      throw new UpperBindingError('E_UPPER_BASE_MISMATCH', `upper ${dir} was made over ${existing.ref} (${existing.manifestDigest}), not ${base.ref} (${base.manifestDigest})`);
    }
    return;
  }
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${FILE}.tmp`), JSON.stringify(base) + '\n');
  await rename(join(dir, `${FILE}.tmp`), join(dir, FILE));
}
