// The parts of hyperswarm and hyperdht lazybd uses (neither ships TypeScript types).

declare module 'hyperdht' {
  import type { EventEmitter } from 'node:events';

  export interface DhtAddress {
    host: string;
    port: number;
  }

  export interface KeyPair {
    publicKey: Buffer;
    secretKey: Buffer;
  }

  export interface DhtOptions {
    bootstrap?: (DhtAddress | string)[];
    /** A port, or a range [from, to) tried in turn; hyperdht reads 0 or absent as 49737-49741. */
    port?: number | [number, number];
    host?: string;
    ephemeral?: boolean;
    firewalled?: boolean;
    anyPort?: boolean;
    /** False: skip the NAT probe at bootstrap that may declare the node open. */
    quickFirewall?: boolean;
    keyPair?: KeyPair;
  }

  export default class HyperDHT extends EventEmitter {
    constructor(options?: DhtOptions);
    static keyPair(seed?: Buffer): KeyPair;
    static bootstrapper(port: number, host: string, options?: DhtOptions): HyperDHT;
    fullyBootstrapped(): Promise<void>;
    address(): DhtAddress;
    destroy(options?: { force?: boolean }): Promise<void>;
  }
}

declare module 'hyperswarm' {
  import type { Duplex } from 'node:stream';
  import type { EventEmitter } from 'node:events';
  import type HyperDHT from 'hyperdht';
  import type { KeyPair } from 'hyperdht';

  /** A Noise-encrypted duplex stream to one peer. */
  export interface SwarmConnection extends Duplex {
    readonly remotePublicKey: Buffer;
  }

  export interface PeerInfo {
    readonly publicKey: Buffer;
    readonly topics: Buffer[];
    ban(banned?: boolean): void;
  }

  export interface PeerDiscovery {
    flushed(): Promise<void>;
    destroy(): Promise<void>;
  }

  export interface SwarmOptions {
    keyPair?: KeyPair;
    dht?: HyperDHT;
    maxPeers?: number;
    /** True rejects the connection. */
    firewall?: (remotePublicKey: Buffer) => boolean;
  }

  export default class Hyperswarm extends EventEmitter {
    constructor(options?: SwarmOptions);
    readonly keyPair: KeyPair;
    readonly dht: HyperDHT;
    readonly connections: Set<SwarmConnection>;
    join(topic: Buffer, options?: { server?: boolean; client?: boolean }): PeerDiscovery;
    leave(topic: Buffer): Promise<void>;
    flush(): Promise<boolean>;
    destroy(options?: { force?: boolean }): Promise<void>;
    on(event: 'connection', listener: (socket: SwarmConnection, info: PeerInfo) => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
