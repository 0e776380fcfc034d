/**
 * Uploads and downloads a 1 GiB attachment through a server running in its own process and samples
 * that process's resident memory (VmRSS) throughout. Prints the peak growth over the idle server
 * for each direction; the goal is < 64 MiB (the bytes must stream, never sit in memory).
 * Usage: node attachments-memory.ts [MiB=1024]
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { streamGet } from './http-client.ts';
import { rssOf, sampler } from './rss.ts';
import { benchEnv, benchToken, spawnServer } from './spawn-server.ts';

const MIB = 1024 * 1024;
const SIZE = Number(process.argv[2] ?? 1024) * MIB;
const GOAL_MIB = 64;

/** SIZE bytes made on the fly from a 1 MiB random block (never all in memory), hashed as they go. */
function content(hash: ReturnType<typeof createHash>) {
  const block = randomBytes(MIB);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= SIZE) {
        this.push(null);
        return;
      }
      const chunk = Buffer.from(block);
      chunk.writeUInt32LE(sent / MIB, 0);
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-bench-att-'));
const server = await spawnServer(benchEnv(dataDir, { ATTACHMENT_MAX_BYTES: String(SIZE + MIB) }));
const url = new URL(server.url);
const token = await benchToken(server.url);

// Warm up (first request compiles the validator), then take the idle baseline.
await fetch(`${server.url}/attachments/warmup.bin`, { headers: { authorization: `Bearer ${token}` } });
await new Promise((r) => setTimeout(r, 300));
const idle = rssOf(server.pid);

const boundary = 'synk-bench-boundary';
const head = Buffer.from(
  `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
);
const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
const sentHash = createHash('sha256');
const stopUpload = sampler(server.pid);
const uploadStart = performance.now();
const uploaded = await new Promise<{ status: number; body: string }>((resolve, reject) => {
  const req = http.request(
    {
      host: url.hostname,
      port: url.port,
      method: 'PUT',
      path: '/attachments/big.bin',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(head.length + SIZE + tail.length),
      },
    },
    (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    },
  );
  req.on('error', reject);
  req.write(head);
  const source = content(sentHash);
  source.on('end', () => req.end(tail));
  source.pipe(req, { end: false });
});
const uploadMs = performance.now() - uploadStart;
const uploadPeak = stopUpload();
const result = JSON.parse(uploaded.body) as { hash: string; size: number };
if (uploaded.status !== 200 || result.hash !== sentHash.digest('hex') || result.size !== SIZE) {
  throw new Error(`upload failed: ${uploaded.status} ${uploaded.body}`);
}

const stopDownload = sampler(server.pid);
const downloadStart = performance.now();
const gotHash = createHash('sha256');
let received = 0;
await streamGet(server.url, '/attachments/big.bin', token, (chunk) => {
  received += chunk.length;
  gotHash.update(chunk);
});
const downloadMs = performance.now() - downloadStart;
const downloadPeak = stopDownload();
if (received !== SIZE || gotHash.digest('hex') !== result.hash)
  throw new Error('download does not match the upload');

await server.stop();
rmSync(dataDir, { recursive: true, force: true });
const mib = (bytes: number) => (bytes / MIB).toFixed(1);
const line = (what: string, peak: number, ms: number) =>
  `${what}: peak RSS growth ${mib(peak - idle)} MiB (goal < ${GOAL_MIB} MiB, ratio ${((peak - idle) / (GOAL_MIB * MIB)).toFixed(2)}× of the budget), ${Math.round(SIZE / MIB / (ms / 1000))} MiB/s`;
process.stdout.write(
  `attachment memory: ${mib(SIZE)} MiB file, server idle RSS ${mib(idle)} MiB\n${line('upload', uploadPeak, uploadMs)}\n${line('download', downloadPeak, downloadMs)}\n`,
);
