/** What the NBD server logs through; inject one to route lines elsewhere (tests collect them). */
export interface NbdLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/** Default: info and warnings to stderr, debug dropped. */
export const stderrLogger: NbdLogger = {
  debug() {},
  info: (message) => process.stderr.write(`nbd: ${message}\n`),
  warn: (message) => process.stderr.write(`nbd: warning: ${message}\n`),
};
