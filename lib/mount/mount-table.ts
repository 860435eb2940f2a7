import { readFile } from 'node:fs/promises';

interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** /proc/self/mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mounts of this mount namespace, in mount order (later entries sit on top). */
async function readMountTable(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left, right] = line.split(' - ');
      const [fsType, source] = (right ?? '').split(' ');
      return { mountPoint: unescape(left!.split(' ')[4]!), fsType: fsType!, source: unescape(source ?? '') };
    });
}

/** What is mounted on top at `path`, if anything. */
export async function mountAt(path: string): Promise<MountEntry | undefined> {
  return (await readMountTable()).filter((m) => m.mountPoint === path).pop();
}
