import { mkdtempSync, readdirSync } from 'node:fs';
import { type FileHandle, open, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { createClient } from '../src/client.ts';
import { FileStorage } from '../src/node.ts';

// writeFile fails as on a full disk when a test says so (the lock's owner file is written with it).
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, writeFile: vi.fn(actual.writeFile) };
});

const noSpace = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
const tempDir = () => mkdtempSync(path.join(tmpdir(), 'synk-full-disk-'));
const record = (id: string) => ({ observation_id: id, form_type: 'visit', data: {} });

describe('file storage on a full disk', () => {
  it('a value that could not be written whole leaves neither its part nor a change behind', async () => {
    const dir = tempDir();
    const storage = new FileStorage(dir);
    await storage.set('a', { n: 1 });
    const probe = await open(path.join(dir, 'probe'), 'w');
    const fileHandle = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const realWrite = fileHandle.writeFile;
    // The disk fills up after the first bytes of the value.
    const write = vi.spyOn(fileHandle, 'writeFile').mockImplementationOnce(async function (
      this: FileHandle,
      data,
    ) {
      await realWrite.call(this, String(data).slice(0, 4));
      throw noSpace();
    });
    try {
      await expect(storage.set('a', { n: 2, text: 'x'.repeat(1000) })).rejects.toThrow('ENOSPC');
    } finally {
      write.mockRestore();
    }
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(await storage.get('a')).toEqual({ n: 1 });
  });

  it('a lock whose owner could not be written is not left behind, so the next operation need not wait for it to go stale', async () => {
    const dir = tempDir();
    // Stale only after a long time: a lock left behind would hold the next save that long.
    const client = createClient({
      baseUrl: 'http://127.0.0.1:9',
      storage: new FileStorage(dir, { staleMs: 600_000, refreshMs: 1000 }),
    });
    vi.mocked(writeFile).mockRejectedValueOnce(noSpace());
    await expect(client.records.save(record('a'))).rejects.toThrow('ENOSPC');
    expect(readdirSync(dir).filter((f) => f.endsWith('.lock'))).toEqual([]);
    await client.records.save(record('b'));
    expect((await client.records.pending()).map((r) => r.observation_id)).toEqual(['b']);
  });
});
