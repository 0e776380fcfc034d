import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createZipStream } from './zip.ts';

describe('createZipStream', () => {
  it('fails the entry being written when the output goes away, instead of leaving its writer waiting', async () => {
    let received = 0;
    const output = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        // The client disconnects after the first 64 KiB.
        if (received > 64 * 1024) callback(new Error('client went away'));
        else setImmediate(callback);
      },
    });
    const zip = await createZipStream(output);
    const entry = zip.entry('big.bin', { compress: false });
    const writeAll = async () => {
      const chunk = Buffer.alloc(16 * 1024, 1);
      for (let i = 0; i < 10_000; i++) if (!entry.write(chunk)) await once(entry, 'drain');
    };
    await expect(writeAll()).rejects.toThrow(/client went away/);
    expect(received).toBeLessThan(10_000 * 16 * 1024);
  });

  it('fails an entry begun after the output went away, instead of taking its data and dropping it', async () => {
    const output = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error('client went away'));
      },
    });
    const zip = await createZipStream(output);
    const first = zip.entry('first.bin', { compress: false });
    first.on('error', () => {});
    first.write(Buffer.alloc(1024));
    await new Promise((resolve) => first.once('close', resolve)); // failed with the output
    const late = zip.entry('late.bin', { compress: false });
    await expect(pipeline(Readable.from([Buffer.alloc(1024)]), late)).rejects.toThrow();
  });
});
