import { createDeflateRaw, deflateRawSync, crc32 as zlibCrc32 } from 'node:zlib';

/**
 * A deliberately naive ZIP writer for tests: it writes entry names byte for byte and lets a test
 * set every field a hostile archive might abuse (traversal names, symlink modes, duplicate names,
 * sizes that lie), which real archivers refuse to produce.
 */
export interface ZipInput {
  name: string;
  data?: string | Buffer;
  /** Unix mode for the external attributes, e.g. 0o120777 for a symlink. */
  mode?: number;
  /** Deflate the data (default) or store it. */
  store?: boolean;
  /** Overrides the uncompressed size written in the headers (to lie about it). */
  declaredSize?: number;
  /** Precompressed deflate data (for bombs built without holding the inflated bytes). */
  deflated?: { data: Buffer; size: number; crc: number };
  /** Writes this compression method in the headers, with the data stored as given (e.g. 12, bzip2). */
  method?: number;
  /** Extra general purpose flags for the headers (e.g. 1, encrypted). */
  flags?: number;
  /** Overrides the CRC-32 written in the headers (a corrupted entry). */
  crc?: number;
}

/** What the end of the archive says (hostile archives lie here too). */
export interface ZipEndOptions {
  /** Overrides the entry count written in the end record (the ZIP64 one with `zip64`). */
  declaredEntries?: number;
  /** Writes a ZIP64 end record and locator, the classic end record pointing to them. */
  zip64?: boolean;
  /** The archive comment at the very end of the file. */
  comment?: string | Buffer;
}

export function buildZip(entries: ZipInput[], end: ZipEndOptions = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const raw = Buffer.isBuffer(entry.data) ? entry.data : Buffer.from(entry.data ?? '', 'utf8');
    const isDir = entry.name.endsWith('/');
    const method = entry.method ?? (entry.deflated ? 8 : entry.store || isDir ? 0 : 8);
    const body = entry.deflated
      ? entry.deflated.data
      : method === 8 && entry.method === undefined
        ? deflateRawSync(raw)
        : raw;
    const flags = 0x0800 | (entry.flags ?? 0); // UTF-8 names
    const crc = entry.crc ?? (entry.deflated ? entry.deflated.crc : zlibCrc32(raw));
    const size = entry.declaredSize ?? (entry.deflated ? entry.deflated.size : raw.length);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(0x21, 10); // 1980-01-01 00:00
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, so the mode in the attributes counts
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(0x21, 12);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    const mode = entry.mode ?? (isDir ? 0o040755 : 0o100644);
    central.writeUInt32LE(((mode & 0xffff) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const count = end.declaredEntries ?? entries.length;
  const comment = Buffer.isBuffer(end.comment) ? end.comment : Buffer.from(end.comment ?? '', 'utf8');
  const records: Buffer[] = [];
  const record = Buffer.alloc(22);
  record.writeUInt32LE(0x06054b50, 0);
  if (end.zip64) {
    const zip64End = Buffer.alloc(56);
    zip64End.writeUInt32LE(0x06064b50, 0);
    zip64End.writeBigUInt64LE(44n, 4); // size of the rest of this record
    zip64End.writeUInt16LE((3 << 8) | 45, 12);
    zip64End.writeUInt16LE(45, 14);
    zip64End.writeBigUInt64LE(BigInt(count), 24);
    zip64End.writeBigUInt64LE(BigInt(count), 32);
    zip64End.writeBigUInt64LE(BigInt(centralSize), 40);
    zip64End.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + centralSize), 8);
    locator.writeUInt32LE(1, 16);
    records.push(zip64End, locator);
    record.writeUInt16LE(0xffff, 8);
    record.writeUInt16LE(0xffff, 10);
    record.writeUInt32LE(0xffffffff, 12);
    record.writeUInt32LE(0xffffffff, 16);
  } else {
    record.writeUInt16LE(count, 8);
    record.writeUInt16LE(count, 10);
    record.writeUInt32LE(centralSize, 12);
    record.writeUInt32LE(offset, 16);
  }
  record.writeUInt16LE(comment.length, 20);
  return Buffer.concat([...locals, ...centrals, ...records, record, comment]);
}

/** Deflated zeros of `size` bytes, compressed a chunk at a time (never holds `size` bytes). */
export async function deflatedZeros(size: number): Promise<{ data: Buffer; size: number; crc: number }> {
  const chunk = Buffer.alloc(1024 * 1024);
  const deflate = createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (b: Buffer) => out.push(b));
  const done = new Promise<void>((resolve, reject) => {
    deflate.on('end', resolve);
    deflate.on('error', reject);
  });
  let crc = 0;
  for (let remaining = size; remaining > 0; remaining -= chunk.length) {
    const piece = remaining >= chunk.length ? chunk : chunk.subarray(0, remaining);
    crc = zlibCrc32(piece, crc);
    if (!deflate.write(piece)) await new Promise((resolve) => deflate.once('drain', resolve));
  }
  deflate.end();
  await done;
  return { data: Buffer.concat(out), size, crc };
}
