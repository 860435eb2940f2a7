import type { FileHandle } from 'node:fs/promises';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Journal } from './journal.js';
import { decodeRecord } from './journal-record.js';
import { JOURNAL_FILE, JOURNAL_HEADER_SIZE, JOURNAL_RECORD_SIZE, JournalOp } from './upper-spec.js';

const SIZE = 1 << 20;
const dirs: string[] = [];

async function freshJournal(): Promise<{ dir: string; journal: Journal }> {
  const dir = await mkdtemp(join(tmpdir(), 'lazybd-journal-'));
  dirs.push(dir);
  return { dir, journal: await Journal.create(dir, SIZE) };
}

async function ops(dir: string): Promise<JournalOp[]> {
  const b = await readFile(join(dir, JOURNAL_FILE));
  const out: JournalOp[] = [];
  for (let at = JOURNAL_HEADER_SIZE; at + JOURNAL_RECORD_SIZE <= b.length; at += JOURNAL_RECORD_SIZE) out.push(decodeRecord(b, at)!.op);
  return out;
}

test.after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

test('a burst of appends lands in call order; flushes with nothing new share one marker', async () => {
  const { dir, journal } = await freshJournal();
  const appended = Array.from({ length: 300 }, (_, i) => journal.append(JournalOp.Zero, i * 512, 512, 0));
  let syncs = 0;
  const sync = async () => void syncs++;
  const first = journal.flush(sync);
  assert.is(journal.flush(sync), first);
  await Promise.all([...appended, first]);
  assert.is(syncs, 1);
  const written = await ops(dir);
  assert.is(written.length, 301);
  assert.is(written[300], JournalOp.Flush);
  const b = await readFile(join(dir, JOURNAL_FILE));
  for (let i = 0; i < 300; i++) assert.is(decodeRecord(b, JOURNAL_HEADER_SIZE + i * JOURNAL_RECORD_SIZE)!.offset, i * 512);
  await journal.close();
});

test('a failed journal write refuses every later append and flush until reopened', async () => {
  const { journal } = await freshJournal();
  // Pull the file out from under the journal: the next write fails.
  await (journal as unknown as { fd: FileHandle }).fd.close();
  const codeOf = (f: () => Promise<void>) => f().then(() => 'none', (e: { code?: string }) => e.code);
  assert.is(await codeOf(() => journal.append(JournalOp.Zero, 0, 512, 0)), 'E_UPPER_JOURNAL_FAILED');
  assert.is(await codeOf(async () => journal.append(JournalOp.Zero, 512, 512, 0)), 'E_UPPER_JOURNAL_FAILED');
  assert.is(await codeOf(async () => journal.flush(async () => undefined)), 'E_UPPER_JOURNAL_FAILED');
});

test.run();
