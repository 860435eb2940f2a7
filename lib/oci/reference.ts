import { LazybdError } from '../errors.js';

/**
 * Image references as users type them. Grammar after distribution's `reference`
 * package: `[host[:port]/]path[:tag][@digest]`. The one lazybd-specific rule: a
 * first component that looks like a host (has `.` or `:`, or is `localhost`)
 * makes the reference remote; otherwise it names an image in the local store.
 */
export type ImageReference = RemoteReference | LocalReference;

export interface RemoteReference {
  kind: 'remote';
  /** `host[:port]` exactly as written (IPv6 hosts keep their brackets). */
  registry: string;
  repository: string;
  /** Absent only when a digest is given without a tag. */
  tag?: string;
  digest?: string;
}

export interface LocalReference {
  kind: 'local';
  name: string;
  tag: string;
}

export class InvalidReferenceError extends LazybdError {
  constructor(readonly input: string, reason: string) {
    super('E_REF_INVALID', `invalid image reference ${JSON.stringify(input)}: ${reason}`, { exitStatus: 2 });
  }
}

export const DEFAULT_TAG = 'latest';

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
// Only the algorithms lazybd can verify.
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_NAME_LENGTH = 255;

export function parseReference(input: string): ImageReference {
  const fail = (reason: string): never => {
    throw new InvalidReferenceError(input, reason);
  };
  if (input === '') fail('empty');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail(`bad digest ${JSON.stringify(digest)} (want sha256:<64 hex> or sha512:<128 hex>)`);
  }

  // A tag follows the last ':' only when no '/' comes after it; otherwise that ':' is a port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`bad tag ${JSON.stringify(tag)}`);
  }

  const components = rest.split('/');
  const first = components[0]!;
  const remote = components.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (remote && !HOST.test(first)) fail(`bad registry host ${JSON.stringify(first)}`);
  const path = remote ? components.slice(1) : components;
  for (const c of path) if (!PATH_COMPONENT.test(c)) fail(`bad name component ${JSON.stringify(c)} (lowercase letters, digits and single separators)`);
  const name = path.join('/');
  if (name.length > MAX_NAME_LENGTH) fail(`name longer than ${MAX_NAME_LENGTH} characters`);

  if (!remote) {
    if (digest !== undefined) fail('a local image is named by tag, not by digest');
    return { kind: 'local', name, tag: tag ?? DEFAULT_TAG };
  }
  const ref: RemoteReference = { kind: 'remote', registry: first, repository: name };
  if (tag !== undefined || digest === undefined) ref.tag = tag ?? DEFAULT_TAG;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** What to put after `/manifests/`: the digest when there is one (it pins the content), else the tag. */
export function manifestReference(ref: RemoteReference): string {
  return ref.digest ?? ref.tag!;
}

export function formatReference(ref: ImageReference): string {
  if (ref.kind === 'local') return `${ref.name}:${ref.tag}`;
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}
