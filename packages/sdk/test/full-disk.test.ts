import { mkdtempSync, readdirSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FileStorage } from '../src/node.ts';

const noSpace = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
const tempDir = () => mkdtempSync(path.join(tmpdir(), 'synk-full-disk-'));

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
});
