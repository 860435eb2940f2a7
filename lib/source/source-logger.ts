/** Where lib/source reports what it recovered from (corrupt chunks, failed cache writes, prefetch retries). */
export interface SourceLogger {
  warn(message: string): void;
}

/** Default: warnings to stderr. */
export const stderrSourceLogger: SourceLogger = {
  warn: (message) => process.stderr.write(`lazybd: warning: ${message}\n`),
};
