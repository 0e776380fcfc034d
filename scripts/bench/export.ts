/**
 * Parquet export of N records (~1 KB each, 3 form types, default 1,000,000) from a SQLite file,
 * streamed over HTTP from a server in its own process. Prints records/s and the server's peak RSS
 * (goals: ≥ 100k rec/s, ≤ 200 MB) and how much of it the export added over the idle server, with
 * the rate of reading the same rows straight from SQLite (better-sqlite3, parsing `data`) as the
 * baseline ratio. With a second argument the records are spread over that many form types in turn
 * (an export reads each type's records on their own once types are many and sparse).
 * Usage: node export.ts [records=1000000] [form types=3]
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { streamGet } from './http-client.ts';
import { rssOf, sampler } from './rss.ts';
import { benchEnv, benchToken, spawnServer } from './spawn-server.ts';

const TOTAL = Number(process.argv[2] ?? 1_000_000);
const FORM_COUNT = Number(process.argv[3] ?? 3);
const FORMS =
  FORM_COUNT === 3
    ? ['household', 'person', 'visit']
    : Array.from({ length: FORM_COUNT }, (_, k) => `form-${k}`);
const env = (dataDir: string) => benchEnv(dataDir);

const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-bench-export-'));
// First start creates and migrates the database; then the records are written straight into it.
await (await spawnServer(env(dataDir))).stop();
const db = new Database(path.join(dataDir, 'synkronus.db'));
const insert = db.prepare(
  'insert into observations (observation_id, form_type, form_version, data, created_at, updated_at, synced_at, deleted, version, geolocation, hash, last_modified_by, origin_client_id) values (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)',
);
const seed = db.transaction((from: number, to: number) => {
  for (let i = from; i < to; i++) {
    const data = JSON.stringify({
      name: `Respondent ${i}`,
      members: i % 11,
      income: (i % 997) * 1.25,
      head: i % 2 === 0,
      village: 'Kisumu North',
      notes: 'x'.repeat(700),
      answers: { q1: true, q2: 'sometimes' },
    });
    insert.run(
      `rec-${i}`,
      FORMS[i % FORM_COUNT],
      '1.0',
      data,
      '2026-01-02T03:04:05Z',
      '2026-01-02T03:04:05Z',
      '2026-01-03T00:00:00.000Z',
      i + 1,
      '{"latitude":-1.28,"longitude":36.82,"accuracy":5}',
      randomUUID().replaceAll('-', '').padEnd(64, '0'),
      'bench',
      'bench',
    );
  }
});
for (let i = 0; i < TOTAL; i += 50_000) seed(i, Math.min(TOTAL, i + 50_000));
db.prepare('update sync_counter set value = ? where id = 1').run(TOTAL);

// Baseline: the same rows read straight from SQLite, with `data` parsed (as any exporter must).
const baseStart = performance.now();
let baseRows = 0;
for (const form of FORMS) {
  for (const row of db
    .prepare('select * from observations where form_type = ? order by version')
    .iterate(form) as Iterable<{ data: string }>) {
    JSON.parse(row.data);
    baseRows += 1;
  }
}
const baseMs = performance.now() - baseStart;
db.close();

const server = await spawnServer(env(dataDir));
const token = await benchToken(server.url);
const idle = rssOf(server.pid);
const stopSampling = sampler(server.pid, 50);
const start = performance.now();
let bytes = 0;
const status = await streamGet(server.url, '/dataexport/parquet', token, (chunk) => {
  bytes += chunk.length;
});
const ms = performance.now() - start;
const peak = stopSampling();
await server.stop();
rmSync(dataDir, { recursive: true, force: true });
if (status !== 200 || baseRows !== TOTAL) throw new Error(`export failed: ${status}`);
const rate = (TOTAL / ms) * 1000;
const baseRate = (TOTAL / baseMs) * 1000;
process.stdout.write(
  `parquet export: ${TOTAL.toLocaleString('en')} records, ${FORM_COUNT.toLocaleString('en')} form types, ${(bytes / 1024 / 1024).toFixed(0)} MiB ZIP in ${(ms / 1000).toFixed(1)} s\n` +
    `  ${Math.round(rate).toLocaleString('en')} rec/s (goal ≥ 100,000; ${(rate / baseRate).toFixed(2)}× of reading and parsing the rows straight from SQLite at ${Math.round(baseRate).toLocaleString('en')} rec/s)\n` +
    `  server peak RSS ${(peak / 1024 / 1024).toFixed(0)} MB (goal ≤ 200 MB; idle ${(idle / 1024 / 1024).toFixed(0)} MB, so the export added ${((peak - idle) / 1024 / 1024).toFixed(0)} MB)\n`,
);
