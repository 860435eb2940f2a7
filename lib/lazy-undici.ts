/**
 * undici, loaded on first use. Loading it takes ~150 ms on a 2-vCPU machine, and a daemon serving
 * local images never speaks HTTP: importing it up front was a third of `serve`'s start-up
 * (integration/bench/README.md §Start-up). Every HTTP client of lazybd gets it here.
 */
type Undici = typeof import('undici');

let loaded: Undici | undefined;
let loading: Promise<Undici> | undefined;

export function undici(): Promise<Undici> {
  return (loading ??= import('undici').then((u) => (loaded = u)));
}

/** The module once a client has loaded it; before that no undici error can exist. */
export function undiciIfLoaded(): Undici | undefined {
  return loaded;
}
