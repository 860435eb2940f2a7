import type { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkCache } from '../source/chunk-cache.js';
import { LazyLayer } from '../source/lazy-layer.js';
import { SourceChain } from '../source/source-chain.js';
import { MemorySource, type SourceBehaviour, type TestLayer } from '../source/test-support.js';
import type { DhtBootstrap } from './dht-bootstrap.js';
import { PeerSource } from './peer-source.js';
import { PeerSwarm, type PeerSwarmOptions } from './peer-swarm.js';
import type { SharedLayer } from './shared-layer.js';

// Test support for lib/p2p tests (not a test file itself): whole nodes in one process, each
// with its own chunk cache, swarm and chain [peer, registry], on a closed local DHT.

export interface TestNode {
  readonly swarm: PeerSwarm;
  readonly lazy: LazyLayer;
  /** The node's registry: an in-memory blob that counts what it serves. */
  readonly registry: MemorySource;
  /** Warnings the node logged (bans, corrupt data). */
  readonly warnings: string[];
  read(physical: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

export interface TestNodeOptions {
  swarm?: Partial<PeerSwarmOptions>;
  /** Fill the cache from the registry before joining (then the registry count starts at zero). */
  warm?: boolean;
  maxRunBytes?: number;
  /** What the swarm is given instead of the node's LazyLayer (a liar, a staller). */
  share?: (layer: LazyLayer) => SharedLayer;
  random?: () => number;
  /** How the node's registry behaves (a delay makes it a round trip away). */
  registry?: SourceBehaviour;
}

export async function startNode(net: DhtBootstrap, layer: TestLayer, options: TestNodeOptions = {}): Promise<TestNode> {
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-p2p-'));
  const warnings: string[] = [];
  const log = { warn: (m: string) => void warnings.push(m) };
  const cache = await ChunkCache.open(dir, { maxBytes: 1 << 30 });
  const swarm = PeerSwarm.start({ bootstrap: net.bootstrap, log, ...options.swarm });
  const registry = new MemorySource('registry', layer, options.registry);
  const chain = new SourceChain({ sources: [new PeerSource(swarm, options.random), registry], attemptTimeoutMs: 5000, ioTimeoutMs: 15_000, backoffMs: 1, log });
  const lazy = new LazyLayer({ blob: layer.digest, chunks: layer.chunks, cache, chain, log, maxRunBytes: options.maxRunBytes, pin: true });
  if (options.warm) {
    await lazy.fetchChunks(0, layer.chunks.count);
    registry.requests.length = 0;
  }
  await swarm.share(options.share ? options.share(lazy) : lazy);
  return {
    swarm,
    lazy,
    registry,
    warnings,
    read: async (physical, length) => {
      const out = Buffer.alloc(length);
      await lazy.readInto(physical, out, 0, length);
      return out;
    },
    close: async () => {
      await swarm.destroy();
      lazy.close();
      await cache.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once `cond` holds, re-checked on every 'change' of the swarm; the timeout only turns a hang into a failure. */
export function until(swarm: EventEmitter, cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (cond()) return resolve();
    const check = (): void => {
      if (!cond()) return;
      done();
      resolve();
    };
    const done = (): void => {
      clearTimeout(timer);
      swarm.off('change', check);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    swarm.on('change', check);
  });
}

/** The layer as a peer that flips the first byte of every chunk it uploads. */
export function lyingLayer(layer: LazyLayer): SharedLayer {
  return {
    blob: layer.blob,
    chunks: layer.chunks,
    isLocal: (i) => layer.isLocal(i),
    localBits: () => layer.localBits(),
    onLocal: (listener) => layer.onLocal(listener),
    fetchChunks: (first, count, demand) => layer.fetchChunks(first, count, demand),
    readLocal: async (i) => {
      const chunk = await layer.readLocal(i);
      if (chunk) chunk[0]! ^= 0xff;
      return chunk;
    },
  };
}

/** The layer as a peer that says it holds everything it holds but never sends a byte. */
export function stallingLayer(layer: LazyLayer): SharedLayer {
  return { ...lyingLayer(layer), readLocal: () => new Promise<Buffer | undefined>(() => {}) };
}

/** The layer as a peer whose HAVE says what the layer holds, but whose chunks are gone (evicted): it answers NOT-HELD. */
export function forgetfulLayer(layer: LazyLayer): SharedLayer {
  return { ...lyingLayer(layer), readLocal: async () => undefined };
}

/** A node that takes from peers but offers nothing: it holds nothing, and as an owner its fetches never end. */
export function leechLayer(layer: LazyLayer): SharedLayer {
  return {
    blob: layer.blob,
    chunks: layer.chunks,
    isLocal: () => false,
    localBits: () => Buffer.alloc(Math.ceil(layer.chunks.count / 8)),
    onLocal: () => () => {},
    fetchChunks: () => new Promise<void>(() => {}),
    readLocal: async () => undefined,
  };
}
