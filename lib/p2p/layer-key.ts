import { createHash } from 'node:crypto';
import { TOPIC_PREFIX } from './protocol.js';

/**
 * The swarm topic and wire key of a layer: sha256(TOPIC_PREFIX || digest). Hashed so the
 * DHT never sees which blobs a node reads; only nodes that know the digest find each other.
 */
export function layerKey(digest: string): Buffer {
  return createHash('sha256').update(TOPIC_PREFIX).update(digest).digest();
}
