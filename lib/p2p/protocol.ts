import { MAX_CHUNK_SIZE } from '../format/layer-spec.js';

/**
 * Constants of the lazybd peer protocol (v2: v1 plus REQUEST's `fetch`). Every frame on the encrypted hyperswarm
 * stream is a u32 big-endian body length, then a msgpack map with `t`, one of `Msg`.
 * The first frame each side sends is HELLO; its shape (`t`, `v`, `layers`) never changes
 * between versions, so a peer can always tell it speaks another version and leave cleanly.
 */
export const PROTOCOL_VERSION = 2;

/** Prefix of the hash that turns a layer digest into its swarm topic and wire key. */
export const TOPIC_PREFIX = 'lazybd-p2p-v1';

export const enum Msg {
  Hello = 1,
  Have = 2,
  HaveUpdate = 3,
  Request = 4,
  Data = 5,
  Cancel = 6,
  Choke = 7,
  Unchoke = 8,
  Error = 9,
}

export const FRAME_HEADER_SIZE = 4;
/** A DATA frame carries one chunk; nothing else comes near this. */
export const MAX_FRAME_BODY = MAX_CHUNK_SIZE + 1024;
/** Layers one HELLO may name, and chunks one REQUEST may ask for: bounds on what a peer makes us hold. */
export const MAX_HELLO_LAYERS = 4096;
export const MAX_REQUEST_CHUNKS = 256;
/**
 * Chunks no peer holds yet are fetched by one node for all: the peer that wins a rendezvous
 * hash of (its key, the layer, the blob offset / OWNER_GROUP_BYTES). One group spans a
 * default 1 MiB read run, so nodes reading the same runs pick the same owner.
 */
export const OWNER_GROUP_BYTES = 1 << 20;

/** Codes of ERROR frames. */
export const PeerErrorCode = {
  /** The HELLO carried a version this node does not speak; the sender closes after it. */
  Version: 'E_P2P_VERSION',
  /** A frame that does not decode, or breaks the protocol; the sender closes after it. */
  Protocol: 'E_P2P_PROTOCOL',
  /** A request for chunks this node does not hold (any more). */
  NotHeld: 'E_P2P_NOT_HELD',
  /** A request refused because uploads are at their limit (a CHOKE precedes it). */
  Busy: 'E_P2P_BUSY',
} as const;
