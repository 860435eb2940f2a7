/** One authentication challenge from a `WWW-Authenticate` header (RFC 7235). */
export interface Challenge {
  /** Lower-cased: `basic`, `bearer`, … */
  scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const SPACE = /[ \t]*/y;
const QUOTED = /"((?:[^"\\]|\\.)*)"/y;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))/y;

/**
 * Parses every challenge in a header value, e.g.
 * `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.
 * Lenient: stops at the first thing it cannot read and returns what it has.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let at = 0;
  const match = (re: RegExp): RegExpExecArray | null => {
    re.lastIndex = at;
    const m = re.exec(header);
    if (m) at = re.lastIndex;
    return m;
  };
  const skipSpace = () => void match(SPACE);

  for (;;) {
    skipSpace();
    while (header[at] === ',') {
      at++;
      skipSpace();
    }
    const scheme = match(TOKEN);
    if (!scheme) return out;
    const challenge: Challenge = { scheme: scheme[0].toLowerCase(), params: {} };
    out.push(challenge);
    skipSpace();
    if (match(TOKEN68)) continue;
    // auth-params: name=value pairs separated by commas, until the next scheme.
    for (;;) {
      const save = at;
      skipSpace();
      const name = match(TOKEN);
      skipSpace();
      if (!name || header[at] !== '=') {
        at = save;
        break;
      }
      at++;
      skipSpace();
      const quoted = match(QUOTED);
      const value = quoted ? quoted[1]!.replace(/\\(.)/g, '$1') : match(TOKEN)?.[0];
      if (value === undefined) return out;
      challenge.params[name[0].toLowerCase()] = value;
      skipSpace();
      if (header[at] !== ',') break;
      at++;
    }
  }
}
