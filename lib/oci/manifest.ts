import { LazybdError } from '../errors.js';

/** OCI image-spec media types and annotation keys lazybd reads or writes. */
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: typeof MEDIA_TYPE_OCI_MANIFEST;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: typeof MEDIA_TYPE_OCI_INDEX;
  manifests: Descriptor[];
}

export class ManifestError extends LazybdError {
  constructor(message: string) {
    super('E_MANIFEST_INVALID', message);
  }
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: unknown): s is string {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

function checkDescriptor(d: unknown, where: string): Descriptor {
  const o = d as Partial<Descriptor> | null;
  if (!o || typeof o.mediaType !== 'string' || !isDigest(o.digest) || !Number.isSafeInteger(o.size) || o.size! < 0) {
    throw new ManifestError(`${where}: not a valid descriptor`);
  }
  return o as Descriptor;
}

/** Parses and shape-checks an OCI image manifest (the registry or store may hand us anything). */
export function parseManifest(bytes: Buffer): ImageManifest {
  let m: Partial<ImageManifest>;
  try {
    m = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ManifestError('manifest is not JSON');
  }
  if (m?.schemaVersion !== 2) throw new ManifestError('manifest schemaVersion is not 2');
  if (m.mediaType !== undefined && m.mediaType !== MEDIA_TYPE_OCI_MANIFEST) throw new ManifestError(`unsupported manifest media type ${m.mediaType}`);
  checkDescriptor(m.config, 'config');
  if (!Array.isArray(m.layers)) throw new ManifestError('manifest has no layers array');
  m.layers.forEach((l, i) => checkDescriptor(l, `layer ${i}`));
  return m as ImageManifest;
}
