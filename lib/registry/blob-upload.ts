import { pipeline, Readable, Transform } from 'node:stream';
import { repositoryScope } from './authorizer.js';
import type { BlobDescriptor } from './content-digest.js';
import { RegistryProtocolError } from './errors.js';
import type { HttpTransport } from './http-transport.js';

/** Blob bytes to upload: a buffer, or a way to open them as a stream (opened at most once). */
export type BlobContent = Buffer | (() => Readable);

export type UploadSession = { mounted: true } | { mounted: false; location: URL };

/**
 * POST /blobs/uploads/: opens an upload session, or with `mountFrom` asks the
 * registry to link the blob from another repository it holds (201) — a registry
 * that cannot mount opens a session instead (202).
 */
export async function startUpload(t: HttpTransport, repository: string, digest: string, mountFrom?: string): Promise<UploadSession> {
  const query = mountFrom === undefined ? '' : `?${new URLSearchParams({ mount: digest, from: mountFrom })}`;
  const scopes = [repositoryScope(repository, 'pull,push'), ...(mountFrom === undefined ? [] : [repositoryScope(mountFrom, 'pull')])];
  const res = await t.send({
    method: 'POST',
    url: `/v2/${repository}/blobs/uploads/${query}`,
    scopes,
    headers: { 'content-length': '0' },
    expect: mountFrom === undefined ? [202] : [201, 202],
    subject: 'upload',
    what: `start upload of ${digest} to ${repository}`,
  });
  await res.body.dump();
  if (res.statusCode === 201) return { mounted: true };
  return { mounted: false, location: locationOf(res.headers.location, res.url, 'start upload') };
}

/** One PUT with the whole blob. */
export async function uploadMonolithic(t: HttpTransport, repository: string, session: URL, blob: BlobDescriptor, content: BlobContent, onProgress?: (bytes: number) => void): Promise<void> {
  // pipeline (not pipe) so a failing source destroys the request body instead of leaving it hanging.
  const body = Buffer.isBuffer(content) ? content : pipeline(content(), counting(onProgress), () => undefined);
  const res = await t.send({
    method: 'PUT',
    url: withDigest(session, blob.digest),
    scopes: [repositoryScope(repository, 'pull,push')],
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
    body,
    expect: [201],
    subject: 'upload',
    what: `upload ${blob.digest} to ${repository}`,
  });
  await res.body.dump();
  if (Buffer.isBuffer(content)) onProgress?.(blob.size);
}

/** PATCH chunk after chunk (each with Content-Range), then PUT ?digest= to close the session. */
export async function uploadChunked(t: HttpTransport, repository: string, session: URL, blob: BlobDescriptor, content: BlobContent, chunkSize: number, onProgress?: (bytes: number) => void): Promise<void> {
  const scopes = [repositoryScope(repository, 'pull,push')];
  const what = `chunked upload of ${blob.digest} to ${repository}`;
  let location = session;
  let offset = 0;
  const chunks = Buffer.isBuffer(content) ? bufferChunks(content, chunkSize) : fixedChunks(content(), chunkSize);
  for await (const chunk of chunks) {
    const end = offset + chunk.length - 1;
    const res = await t.send({
      method: 'PATCH',
      url: location,
      scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end}`, 'content-length': String(chunk.length) },
      body: chunk,
      expect: [202],
      subject: 'upload',
      what,
    });
    await res.body.dump();
    // The registry says how much it holds; anything but all we sent means the session is out of step.
    const range = res.headers.range;
    if (typeof range === 'string' && range !== `0-${end}` && range !== `bytes=0-${end}`) {
      throw new RegistryProtocolError(`${what}: registry holds ${range} after sending bytes 0-${end}`, { status: 202 });
    }
    location = locationOf(res.headers.location, res.url, what);
    offset = end + 1;
    onProgress?.(chunk.length);
  }
  const res = await t.send({
    method: 'PUT',
    url: withDigest(location, blob.digest),
    scopes,
    headers: { 'content-length': '0' },
    expect: [201],
    subject: 'upload',
    what,
  });
  await res.body.dump();
}

/** DELETE on an upload session nobody will finish. */
export async function cancelUpload(t: HttpTransport, repository: string, session: URL): Promise<void> {
  const res = await t.send({
    method: 'DELETE',
    url: session,
    scopes: [repositoryScope(repository, 'pull,push')],
    expect: [204, 404],
    subject: 'upload',
    what: `cancel upload to ${repository}`,
  });
  await res.body.dump();
}

function locationOf(header: string | string[] | undefined, base: URL, what: string): URL {
  if (typeof header !== 'string' || !header) throw new RegistryProtocolError(`${what}: response has no Location`);
  return new URL(header, base);
}

/** Session URLs carry state in their query (`_state=`); the digest is added beside it. */
function withDigest(location: URL, digest: string): URL {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url;
}

function* bufferChunks(content: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < content.length; at += size) yield content.subarray(at, at + size);
}

/** Regroups a stream into `size`-byte buffers (the last one shorter) so each PATCH can be retried. */
async function* fixedChunks(source: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of source as AsyncIterable<Buffer>) {
    let rest = piece;
    while (pendingBytes + rest.length >= size) {
      const take = size - pendingBytes;
      pending.push(rest.subarray(0, take));
      yield Buffer.concat(pending);
      rest = rest.subarray(take);
      pending = [];
      pendingBytes = 0;
    }
    if (rest.length) {
      pending.push(rest);
      pendingBytes += rest.length;
    }
  }
  if (pendingBytes) yield Buffer.concat(pending);
}

function counting(onProgress?: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onProgress?.(chunk.length);
      done(null, chunk);
    },
  });
}
