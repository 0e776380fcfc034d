import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buildZip, type ZipEndOptions, type ZipInput } from '@synk/test-support/zip';
import { afterAll, describe, expect, it } from 'vitest';
import { BadEntry, createZipStream, extractEntry, NotAZip, readZipDirectory, TooManyEntries } from './zip.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'synk-zip-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function zipFile(entries: ZipInput[], end?: ZipEndOptions): string;
function zipFile(bytes: Buffer): string;
function zipFile(input: ZipInput[] | Buffer, end?: ZipEndOptions): string {
  const file = path.join(dir, `${files++}.zip`);
  writeFileSync(file, Buffer.isBuffer(input) ? input : buildZip(input, end));
  return file;
}

const three: ZipInput[] = [
  { name: 'a.txt', data: 'a' },
  { name: 'b/', data: '' },
  { name: 'b/c.txt', data: 'c' },
];

/** An end of central directory record, as a ZIP writer would put it at the end of the file. */
function endRecord(
  entries: number,
  centralSize: number,
  centralOffset: number,
  commentLength: number,
): Buffer {
  const record = Buffer.alloc(22);
  record.writeUInt32LE(0x06054b50, 0);
  record.writeUInt16LE(entries, 8);
  record.writeUInt16LE(entries, 10);
  record.writeUInt32LE(centralSize, 12);
  record.writeUInt32LE(centralOffset, 16);
  record.writeUInt16LE(commentLength, 20);
  return record;
}

describe('readZipDirectory', () => {
  it('reads the entries of an archive', async () => {
    const entries = await readZipDirectory(zipFile(three), 10);
    expect(entries.map((e) => [e.name, e.isDirectory])).toEqual([
      ['a.txt', false],
      ['b/', true],
      ['b/c.txt', false],
    ]);
  });

  it('refuses more entries than allowed from the end record alone (its directory is never parsed)', async () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ name: `f${i}`, data: '' }));
    await expect(readZipDirectory(zipFile(many), 29)).rejects.toEqual(new TooManyEntries(30));
    expect(await readZipDirectory(zipFile(many), 30)).toHaveLength(30);
    // A count no directory backs: parsing it would fail, the count is refused first.
    const error = await readZipDirectory(zipFile(three, { declaredEntries: 60_000 }), 5000).catch((e) => e);
    expect(error).toBeInstanceOf(TooManyEntries);
    expect(error.count).toBe(60_000);
    const zip64 = await readZipDirectory(
      zipFile(three, { zip64: true, declaredEntries: 2 ** 40 }),
      5000,
    ).catch((e) => e);
    expect(zip64.count).toBe(2 ** 40);
  });

  it('reads ZIP64 end records and archive comments of any length', async () => {
    expect(await readZipDirectory(zipFile(three, { zip64: true }), 3)).toHaveLength(3);
    expect(await readZipDirectory(zipFile(three, { comment: 'x'.repeat(65_535) }), 3)).toHaveLength(3);
  });

  it('counts with the same end record the directory is parsed from, whatever the comment holds', async () => {
    const plain = buildZip(three);
    const centralSize = plain.readUInt32LE(plain.length - 22 + 12);
    const centralOffset = plain.readUInt32LE(plain.length - 22 + 16);
    const body = plain.subarray(0, plain.length - 22);
    // The real record declares 60000 entries; its comment holds a record declaring 3 that does
    // not reach the end of the file, so it is not an end record.
    const decoy = endRecord(3, centralSize, centralOffset, 100);
    const lying = Buffer.concat([body, endRecord(60_000, centralSize, centralOffset, 22), decoy]);
    await expect(readZipDirectory(zipFile(lying), 5000)).rejects.toEqual(new TooManyEntries(60_000));
    // A record in the comment that does end the file is the end record, for the count and the parse.
    const nested = Buffer.concat([
      body,
      endRecord(60_000, centralSize, centralOffset, 22),
      endRecord(2, centralSize, centralOffset, 0),
    ]);
    expect((await readZipDirectory(zipFile(nested), 5000)).map((e) => e.name)).toEqual(['a.txt', 'b/']);
  });

  it('not a ZIP: too short, no end record, a ZIP64 end record missing', async () => {
    for (const bytes of [
      Buffer.from('PK'),
      Buffer.alloc(1000, 7),
      buildZip(three).subarray(0, -4),
      Buffer.concat([buildZip(three).subarray(0, -22), endRecord(0xffff, 0, 0, 0)]),
    ]) {
      await expect(readZipDirectory(zipFile(bytes), 5000)).rejects.toBeInstanceOf(NotAZip);
    }
  });
});

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

describe('extractEntry', () => {
  const entriesOf = async (inputs: ZipInput[]) => readZipDirectory(zipFile(inputs), 100);

  it('a name the file system refuses, or data that cannot be read: BadEntry, naming no server path', async () => {
    const out = mkdtempSync(path.join(dir, 'out-'));
    writeFileSync(path.join(out, 'taken'), 'a file');
    const [clash, corrupt, bzip2, encrypted] = await entriesOf([
      { name: 'taken/inside.txt', data: 'x' },
      { name: 'corrupt.txt', data: Buffer.from('not deflate data at all'), method: 8 },
      { name: 'bzip2.txt', data: 'BZh9', method: 12 },
      { name: 'secret.txt', data: 'x', flags: 1 },
    ]);
    const failure = (entry: typeof clash, target: string) =>
      extractEntry(entry!, path.join(out, target), 1000).then(
        () => undefined,
        (err: unknown) => err,
      );
    const errors = [
      await failure(clash, 'taken/inside.txt'),
      await failure(corrupt, 'corrupt.txt'),
      await failure(bzip2, 'bzip2.txt'),
      await failure(encrypted, 'secret.txt'),
    ];
    for (const err of errors) expect(err).toBeInstanceOf(BadEntry);
    expect(errors.map((e) => (e as Error).message)).toEqual([
      'its name clashes with another entry',
      expect.stringMatching(/^its compressed data is corrupt \(.+\)$/),
      'it uses compression method 12; only stored (0) and deflate (8) are supported',
      'it is encrypted',
    ]);
  });

  it('any other file system failure is the server’s: thrown as it is', async () => {
    const out = mkdtempSync(path.join(dir, 'out-'));
    symlinkSync('loop', path.join(out, 'loop')); // a link to itself: ELOOP
    const [entry] = await entriesOf([{ name: 'loop/x/file.txt', data: 'x' }]);
    const err = await extractEntry(entry!, path.join(out, 'loop', 'x', 'file.txt'), 1000).catch((e) => e);
    expect(err).not.toBeInstanceOf(BadEntry);
    expect(err.code).toBe('ELOOP');
    mkdirSync(path.join(out, 'fine'));
    expect((await extractEntry(entry!, path.join(out, 'fine', 'file.txt'), 1000)).size).toBe(1);
  });
});
