import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, UnsupportedDigestError } from './errors.js';

/** The content a descriptor promises: every download is checked against it. */
export interface BlobDescriptor {
  digest: string;
  size: number;
}

const ALGORITHMS: Record<string, string> = { sha256: 'sha256', sha512: 'sha512' };

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Hashes bytes as they pass and checks digest and size at the end. */
export class DigestVerifier {
  private readonly hash: Hash;
  private readonly algorithm: string;
  private count = 0;

  constructor(private readonly expected: BlobDescriptor) {
    const [algorithm] = expected.digest.split(':');
    const node = ALGORITHMS[algorithm!];
    if (!node) throw new UnsupportedDigestError(expected.digest);
    this.algorithm = algorithm!;
    this.hash = createHash(node);
  }

  get bytes(): number {
    return this.count;
  }

  update(chunk: Uint8Array): void {
    this.count += chunk.length;
    this.hash.update(chunk);
  }

  /** Throws DigestMismatchError unless the bytes seen are exactly the expected content. */
  verify(): void {
    const actual = `${this.algorithm}:${this.hash.digest('hex')}`;
    if (this.count !== this.expected.size) {
      throw new DigestMismatchError(this.expected.digest, actual, `${this.expected.digest}: got ${this.count} bytes, descriptor says ${this.expected.size}`);
    }
    if (actual !== this.expected.digest) {
      throw new DigestMismatchError(this.expected.digest, actual, `content of ${this.expected.digest} hashes to ${actual}`);
    }
  }
}

/** Throws DigestMismatchError unless `bytes` are exactly the expected content. */
export function verifyBytes(bytes: Uint8Array, expected: BlobDescriptor): void {
  const verifier = new DigestVerifier(expected);
  verifier.update(bytes);
  verifier.verify();
}

/** A pass-through stream that reports progress and fails at its end when the content does not match. */
export function verifyingStream(expected: BlobDescriptor, onProgress?: (bytes: number) => void): Transform {
  const verifier = new DigestVerifier(expected);
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      verifier.update(chunk);
      // Fail early on an over-long body rather than after streaming all of it.
      if (verifier.bytes > expected.size) return done(new DigestMismatchError(expected.digest, '', `${expected.digest}: more than ${expected.size} bytes`));
      onProgress?.(chunk.length);
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      try {
        verifier.verify();
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
}
