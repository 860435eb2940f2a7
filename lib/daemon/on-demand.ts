/**
 * A resource made the first time it is asked for, and closed only if it was made: a daemon
 * serving local images never locks the chunk cache or starts P2P, yet a clone of a
 * registry image added later gets them.
 */
export class OnDemand<T extends { close(): Promise<void> }> {
  private making: Promise<T> | undefined;
  private value: T | undefined;

  constructor(private readonly make: () => Promise<T>) {}

  get(): Promise<T> {
    this.making ??= this.make().then(
      (v) => (this.value = v),
      (e) => {
        this.making = undefined;
        throw e;
      },
    );
    return this.making;
  }

  /** The resource if it was made. */
  get made(): T | undefined {
    return this.value;
  }

  async close(): Promise<void> {
    const v = await this.making?.catch(() => undefined);
    await v?.close();
  }
}
