import type { BlockDevice } from '../device/block-device.js';

export interface NbdExport {
  name: string;
  description?: string;
  device: BlockDevice;
}

/** The exports a server offers, looked up by name; '' means the default export. */
export class ExportRegistry {
  private readonly byName = new Map<string, NbdExport>();

  constructor(private readonly defaultName?: string) {}

  add(entry: NbdExport): void {
    this.byName.set(entry.name, entry);
  }

  remove(name: string): boolean {
    return this.byName.delete(name);
  }

  find(name: string): NbdExport | undefined {
    if (name === '' && this.defaultName !== undefined) return this.byName.get(this.defaultName);
    return this.byName.get(name);
  }

  list(): IterableIterator<NbdExport> {
    return this.byName.values();
  }
}
