/**
 * Initial sync of N records (~1 KB, default 100,000) through the SDK with file storage, from a
 * server in its own process: records/s (goal ≥ 12,000), with the raw HTTP pull of the same pages
 * measured in the same run as the baseline ratio.
 * Usage: node sdk-sync.ts [records=100000]
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, FileStorage } from '@synk/sdk/node';
import { jsonClient } from './http-client.ts';
import { BENCH_PASSWORD, benchEnv, benchToken, spawnServer } from './spawn-server.ts';

const TOTAL = Number(process.argv[2] ?? 100_000);
const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-bench-sdk-'));
const server = await spawnServer(benchEnv(dataDir, { SYNC_VALIDATION: 'off' }));
const token = await benchToken(server.url);
const raw = jsonClient(server.url, { authorization: `Bearer ${token}` });
for (let i = 0; i < TOTAL; i += 500) {
  const records = Array.from({ length: Math.min(500, TOTAL - i) }, (_, j) => ({
    observation_id: `sdk-${i + j}`,
    form_type: 'household',
    data: { n: i + j, name: `Respondent ${i + j}`, notes: 'x'.repeat(800) },
  }));
  const res = await raw.post(
    '/sync/push',
    JSON.stringify({ transmission_id: randomUUID(), client_id: 'seed', records }),
  );
  if (res.status !== 200) throw new Error(`seed failed: ${res.status}`);
}

// Baseline: the same 500-record pages over raw HTTP, parsed, nothing else.
let start = performance.now();
let cursor = 0;
for (;;) {
  const page = JSON.parse(
    (await raw.post('/sync/pull?limit=500', JSON.stringify({ client_id: 'raw', since: { version: cursor } })))
      .text,
  );
  cursor = page.change_cutoff;
  if (!page.has_more) break;
}
const rawRate = (TOTAL / (performance.now() - start)) * 1000;
raw.close();

const storageDir = path.join(dataDir, 'device');
const client = createClient({
  baseUrl: server.url,
  credentials: { username: 'admin', password: BENCH_PASSWORD },
  storage: new FileStorage(storageDir),
});
await client.auth.login();
const local = new Map<string, unknown>();
start = performance.now();
let applied = 0;
for await (const page of client.pullPages({ limit: 500 })) {
  for (const record of page.records) local.set(record.observation_id, record);
  applied += page.records.length;
}
const sdkRate = (applied / (performance.now() - start)) * 1000;
await server.stop();
rmSync(dataDir, { recursive: true, force: true });
if (local.size !== TOTAL) throw new Error(`synced ${local.size} of ${TOTAL}`);
process.stdout.write(
  `SDK initial sync: ${TOTAL.toLocaleString('en')} records through the SDK with file storage: ${Math.round(sdkRate).toLocaleString('en')} rec/s (goal ≥ 12,000; ${(sdkRate / rawRate).toFixed(2)}× of raw HTTP pulls at ${Math.round(rawRate).toLocaleString('en')} rec/s)\n`,
);
