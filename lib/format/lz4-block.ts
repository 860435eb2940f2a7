/**
 * Pure TypeScript decoder of one raw LZ4 block (lz4's doc/lz4_Block_format.md), the fallback when
 * lz4-napi does not load. The input is untrusted: every length is checked against both buffers
 * before a byte moves, so a malformed block throws instead of reading or writing out of bounds.
 */

/** Shorter copies are faster as a loop than through a typed-array call. */
const SHORT_COPY = 32;

/**
 * Decodes `input` into the start of `output` and returns how many bytes it wrote. Throws an Error
 * naming the input offset when the block is malformed or would not fit in `output`.
 */
export function decodeLz4Block(input: Buffer, output: Buffer): number {
  const inEnd = input.length;
  const outEnd = output.length;
  let ip = 0;
  let op = 0;

  /** The 255-continued extension of a 15 in a token nibble. */
  const extraLength = (): number => {
    let n = 0;
    let b: number;
    do {
      if (ip >= inEnd) throw new Error(`lz4 block truncated in a length at input ${ip}`);
      b = input[ip++];
      n += b;
    } while (b === 255);
    return n;
  };

  for (;;) {
    // A block ends with a literal-only sequence, so running out of input here means it was cut short.
    if (ip >= inEnd) throw new Error(ip === 0 ? 'lz4 block is empty' : `lz4 block ends after a match at input ${ip}, without its last literals`);
    const token = input[ip++];

    let literals = token >>> 4;
    if (literals === 15) literals += extraLength();
    if (literals > inEnd - ip) throw new Error(`lz4 literal run of ${literals} bytes at input ${ip} passes the end of the block`);
    if (literals > outEnd - op) throw new Error(`lz4 literal run of ${literals} bytes at input ${ip} overruns the ${outEnd}-byte output`);
    if (literals < SHORT_COPY) {
      for (let i = 0; i < literals; i++) output[op++] = input[ip++];
    } else {
      output.set(input.subarray(ip, ip + literals), op);
      ip += literals;
      op += literals;
    }
    if (ip === inEnd) return op;

    if (inEnd - ip < 2) throw new Error(`lz4 block truncated in a match offset at input ${ip}`);
    const offset = input[ip] | (input[ip + 1] << 8);
    if (offset === 0) throw new Error(`lz4 match offset 0 at input ${ip}`);
    if (offset > op) throw new Error(`lz4 match offset ${offset} at input ${ip} points before the start of the output (at ${op})`);
    ip += 2;

    let length = (token & 15) + 4;
    if ((token & 15) === 15) length += extraLength();
    if (length > outEnd - op) throw new Error(`lz4 match of ${length} bytes at input ${ip} overruns the ${outEnd}-byte output`);
    let from = op - offset;
    if (offset >= length && length >= SHORT_COPY) {
      output.copyWithin(op, from, from + length);
      op += length;
    } else {
      // A match may overlap the bytes it produces (offset < length repeats a pattern): copy forward byte by byte.
      for (let i = 0; i < length; i++) output[op++] = output[from++];
    }
  }
}
