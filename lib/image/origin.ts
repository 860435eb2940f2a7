/** Annotations on a pulled image's index.json entry: where its missing layer data comes from. */
export const ANNOTATION_ORIGIN = 'org.lazybd.origin';
export const ANNOTATION_ORIGIN_PLAIN_HTTP = 'org.lazybd.origin.plain-http';

export interface ImageOrigin {
  /** `host[:port]/repository@sha256:…` of the manifest pulled. */
  ref: string;
  plainHttp: boolean;
}

export function originAnnotations(o: ImageOrigin): Record<string, string> {
  return { [ANNOTATION_ORIGIN]: o.ref, [ANNOTATION_ORIGIN_PLAIN_HTTP]: String(o.plainHttp) };
}

export function originOf(annotations: Record<string, string> | undefined): ImageOrigin | undefined {
  const ref = annotations?.[ANNOTATION_ORIGIN];
  return ref ? { ref, plainHttp: annotations?.[ANNOTATION_ORIGIN_PLAIN_HTTP] === 'true' } : undefined;
}
