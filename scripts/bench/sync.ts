/**
 * Push and pull throughput of ~1 KB records in 500-record requests over HTTP on a SQLite file,
 * each with its ratio to the raw limit measured in the same run:
 *  - push baseline: the same rows written with better-sqlite3 directly, in 500-row transactions,
 *    with a sha256 per record;
 *  - pull baseline: the same 500-record pages selected with better-sqlite3 and serialised directly.
 * Both sides use the same durability (`synchronous = FULL`: each commit is fsynced before it is
 * acknowledged). Each side's pull rate is the median of PULL_ROUNDS full pulls. The two sides are
 * measured ROUNDS times, alternately (raw, server, raw, server, …), and the ratios printed are the
 * medians of each round's ratio: on a shared machine one raw run alone swings by ±15%.
 * Usage: node sync.ts [records=50000] [rounds=3]
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { jsonClient } from './http-client.ts';
import { benchEnv, benchToken, spawnServer } from './spawn-server.ts';

const TOTAL = Number(process.argv[2] ?? 50_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const BATCH = 500;

function makeRecord(i: number) {
  return {
    observation_id: `bench-${i}`,
    form_type: ['household', 'person', 'visit'][i % 3]!,
    form_version: '1.0',
    created_at: '2026-01-02T03:04:05Z',
    updated_at: '2026-01-02T03:04:05Z',
    deleted: false,
    geolocation: { latitude: -1.28 + i / 1e6, longitude: 36.82, accuracy: 5 },
    data: {
      name: `Respondent ${i}`,
      village: 'Kisumu North',
      members: i % 11,
      notes: 'x'.repeat(700),
      answers: { q1: true, q2: 'sometimes', q3: [1, 2, 3] },
    },
  };
}
const recordBytes = JSON.stringify(makeRecord(0)).length;
// What arrives on the wire: each batch as JSON text, encoded (prepared before any timing starts;
// only the bytes are kept, outside the JavaScript heap, so the client's own heap stays small and
// its garbage collection cheap while it shares the two cores with the server). Every round's
// server starts from an empty database, so the same bodies serve every round.
const bodies = Array.from({ length: TOTAL / BATCH }, (_, b) =>
  Buffer.from(
    JSON.stringify({
      transmission_id: randomUUID(),
      client_id: 'bench',
      records: Array.from({ length: BATCH }, (_, i) => makeRecord(b * BATCH + i)),
    }),
  ),
);
/** Requests in flight at once: a few devices syncing together. */
const PUSH_CONCURRENCY = 2;
const PULL_DEVICES = 4;
/**
 * Pulls are read-only: each side pulls everything this many times and reports its median rate (a
 * raw pull of 50,000 records takes ~0.2 s, so one round is at the mercy of a moment's noise).
 */
const PULL_ROUNDS = 3;

const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]!;

function rate(count: number, ms: number) {
  return (count / ms) * 1000;
}

async function serverRun() {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-bench-sync-'));
  // The server runs in a process of its own, as in production; this process is only its client.
  const server = await spawnServer(benchEnv(dataDir, { SYNC_VALIDATION: 'off' }));
  const base = server.url;
  const token = await benchToken(base);
  const client = jsonClient(base, { authorization: `Bearer ${token}` });

  const pushStart = performance.now();
  let next = 0;
  const pusher = async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      const res = await client.post('/sync/push', body);
      const result = JSON.parse(res.text) as { success_count: number };
      if (res.status !== 200 || result.success_count !== BATCH) throw new Error(`push failed: ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: PUSH_CONCURRENCY }, pusher));
  const pushMs = performance.now() - pushStart;

  // Each puller is a device doing the spec's loop (`since.version = change_cutoff` while
  // `has_more`) over the whole data set; several devices sync at once, as in the field. The devices
  // share this machine's two cores with the server, so while timed they do not parse each page
  // (JSON.parse of the pages alone capped this benchmark near 150,000 rec/s even against a server
  // sending one constant page): they count the records in the bytes as they arrive, keep only the
  // page's tail and read the cursor from it. Afterwards one device's pull is parsed and checked in
  // full, untimed.
  const pullLoop = async (device: number) => {
    let cursor = 0;
    let pulled = 0;
    for (;;) {
      const page = new PageScanner();
      const status = await client.postChunks(
        `/sync/pull?limit=${BATCH}`,
        JSON.stringify({ client_id: `bench-${device}`, since: { version: cursor } }),
        (chunk) => page.feed(chunk),
      );
      if (status !== 200) throw new Error(`pull failed: ${status}`);
      pulled += page.records;
      const tail = pageTail(page.tail);
      cursor = tail.change_cutoff;
      if (!tail.has_more) return pulled;
    }
  };
  const pullRates: number[] = [];
  for (let round = 0; round < PULL_ROUNDS; round++) {
    const pullStart = performance.now();
    const counts = await Promise.all(Array.from({ length: PULL_DEVICES }, (_, d) => pullLoop(d)));
    pullRates.push(rate(TOTAL * PULL_DEVICES, performance.now() - pullStart));
    if (counts.some((c) => c !== TOTAL)) throw new Error(`pulled ${counts.join(', ')} of ${TOTAL}`);
  }
  await checkFullPull(client);
  client.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
  return { push: rate(TOTAL, pushMs), pull: median(pullRates) };
}

const RECORD_START = Buffer.from('{"observation_id":');
/** Records in a pull page's bytes: each starts with this key (no benchmark record's data has such a key). */
function countRecords(body: Buffer): number {
  let count = 0;
  for (let at = body.indexOf(RECORD_START); at !== -1; at = body.indexOf(RECORD_START, at + 1)) count++;
  return count;
}

/**
 * A pull page's record count and last bytes, taken from its chunks as they arrive (no page is held
 * whole). A record start split across two chunks is found in the few bytes around the seam.
 */
class PageScanner {
  records = 0;
  tail = Buffer.alloc(0);
  static readonly TAIL_BYTES = 1024;

  feed(chunk: Buffer): void {
    const overlap = RECORD_START.length - 1;
    if (this.tail.length > 0) {
      this.records += countRecords(Buffer.concat([this.tail.subarray(-overlap), chunk.subarray(0, overlap)]));
    }
    this.records += countRecords(chunk);
    this.tail =
      chunk.length >= PageScanner.TAIL_BYTES
        ? Buffer.from(chunk.subarray(-PageScanner.TAIL_BYTES))
        : Buffer.concat([this.tail, chunk]).subarray(-PageScanner.TAIL_BYTES);
  }
}

/** The fields after a pull page's records: `change_cutoff`, `has_more`, … */
function pageTail(body: Buffer): { change_cutoff: number; has_more: boolean } {
  const at = body.lastIndexOf('],"change_cutoff":');
  if (at === -1) throw new Error(`not a pull page: ${body.subarray(0, 200).toString()}`);
  return JSON.parse(`{${body.subarray(at + 2).toString()}`);
}

/**
 * One device's whole pull, parsed: every record once, in version order, and each page as the timed
 * devices' PageScanner counts it, fed in pieces of many sizes (so seams fall everywhere).
 */
async function checkFullPull(client: ReturnType<typeof jsonClient>) {
  const seen = new Set<string>();
  let cursor = 0;
  let lastVersion = 0;
  for (;;) {
    const res = await client.postBytes(
      `/sync/pull?limit=${BATCH}`,
      JSON.stringify({ client_id: 'bench-check', since: { version: cursor } }),
    );
    const page = JSON.parse(res.body.toString()) as {
      records: { observation_id: string; version: number; data: { name: string } }[];
      change_cutoff: number;
      has_more: boolean;
    };
    const scanner = new PageScanner();
    const piece = 1 + (cursor % 997);
    for (let at = 0; at < res.body.length; at += piece) scanner.feed(res.body.subarray(at, at + piece));
    if (page.records.length !== scanner.records) throw new Error('record count differs from parse');
    if (pageTail(scanner.tail).change_cutoff !== page.change_cutoff)
      throw new Error('tail differs from parse');
    for (const r of page.records) {
      if (r.version <= lastVersion || seen.has(r.observation_id))
        throw new Error(`out of order: ${r.observation_id}`);
      lastVersion = r.version;
      seen.add(r.observation_id);
    }
    cursor = page.change_cutoff;
    if (!page.has_more) break;
  }
  if (seen.size !== TOTAL) throw new Error(`full pull saw ${seen.size} of ${TOTAL}`);
}

function rawRun() {
  const dir = mkdtempSync(path.join(tmpdir(), 'synk-bench-raw-'));
  const db = new Database(path.join(dir, 'raw.db'));
  db.pragma('journal_mode = wal');
  // The server's durability: without this, better-sqlite3's SQLite switches a WAL database to
  // `synchronous = NORMAL` at its next transaction (no fsync per commit).
  db.pragma('synchronous = full');
  // The server's own table and indexes (its migration), so both sides write the same thing.
  db.exec(
    'create table observations (observation_id text primary key, form_type text not null, form_version text, data text not null, created_at text, updated_at text, synced_at text not null, deleted integer not null, version integer not null, geolocation text, hash text not null, last_modified_by text not null, origin_client_id text not null)',
  );
  db.exec('create unique index observations_version_unique on observations (version)');
  db.exec('create index observations_form_type_version_index on observations (form_type, version)');
  db.exec(
    'create index observations_large_data_index on observations (version) where octet_length(data) > 16384',
  );
  const insert = db.prepare('insert into observations values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  let version = 0;
  const writeBatch = db.transaction((records: ReturnType<typeof makeRecord>[]) => {
    const now = new Date().toISOString();
    for (const r of records) {
      const data = JSON.stringify(r.data);
      const geo = JSON.stringify(r.geolocation);
      const hash = createHash('sha256').update(`${r.form_type}${r.form_version}${data}${geo}`).digest('hex');
      version += 1;
      insert.run(
        r.observation_id,
        r.form_type,
        r.form_version,
        data,
        r.created_at,
        r.updated_at,
        now,
        0,
        version,
        geo,
        hash,
        'admin',
        'bench',
      );
    }
  });
  // Like the server, the raw writer receives each batch as JSON text and parses it (the text is
  // decoded from the bytes before timing starts, and dropped afterwards).
  let texts = bodies.map((body) => body.toString());
  const pushStart = performance.now();
  for (const text of texts)
    writeBatch((JSON.parse(text) as { records: ReturnType<typeof makeRecord>[] }).records);
  const pushMs = performance.now() - pushStart;
  texts = [];

  const select = db.prepare('select * from observations where version > ? order by version limit ?');
  const pullRates: number[] = [];
  for (let round = 0; round < PULL_ROUNDS; round++) {
    let rawBytes = 0;
    const pullStart = performance.now();
    let cursor = 0;
    let pulled = 0;
    for (;;) {
      const rows = select.all(cursor, BATCH + 1) as Record<string, string | number>[];
      const page = rows.slice(0, BATCH);
      const text = `{"records":[${page
        .map(
          (r) =>
            `{"observation_id":${JSON.stringify(r.observation_id)},"form_type":${JSON.stringify(r.form_type)},"form_version":${JSON.stringify(r.form_version)},"data":${r.data},"created_at":${JSON.stringify(r.created_at)},"updated_at":${JSON.stringify(r.updated_at)},"synced_at":${JSON.stringify(r.synced_at)},"deleted":${r.deleted === 1},"version":${r.version},"geolocation":${r.geolocation},"hash":"${r.hash}","last_modified_by":${JSON.stringify(r.last_modified_by)},"origin_client_id":${JSON.stringify(r.origin_client_id)}}`,
        )
        .join(',')}],"has_more":${rows.length > BATCH}}`;
      rawBytes += text.length;
      pulled += page.length;
      cursor = page.at(-1)?.version as number;
      if (rows.length <= BATCH) break;
    }
    pullRates.push(rate(TOTAL, performance.now() - pullStart));
    if (pulled !== TOTAL || rawBytes === 0) throw new Error(`raw pulled ${pulled}`);
  }
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { push: rate(TOTAL, pushMs), pull: median(pullRates) };
}

const rounds: { raw: { push: number; pull: number }; server: { push: number; pull: number } }[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const raw = rawRun();
  const server = await serverRun();
  rounds.push({ raw, server });
  process.stdout.write(
    `round ${round + 1}: push ${Math.round(server.push)} vs ${Math.round(raw.push)} rec/s (${(server.push / raw.push).toFixed(2)}×), pull ${Math.round(server.pull)} vs ${Math.round(raw.pull)} rec/s (${(server.pull / raw.pull).toFixed(2)}×)\n`,
  );
}
/** The round whose ratio is the median, so the rates printed are the ones that gave it. */
const medianRound = (side: 'push' | 'pull') =>
  rounds.toSorted((a, b) => a.server[side] / a.raw[side] - b.server[side] / b.raw[side])[
    Math.floor(rounds.length / 2)
  ]!;
const line = (side: 'push' | 'pull') => {
  const { server, raw } = medianRound(side);
  return `${side}: ${Math.round(server[side]).toLocaleString('en')} rec/s over HTTP vs ${Math.round(raw[side]).toLocaleString('en')} rec/s raw better-sqlite3 → ${(server[side] / raw[side]).toFixed(2)}× (goal ≥ 0.80×)`;
};
process.stdout.write(
  `sync benchmark: ${TOTAL.toLocaleString('en')} records of ~${recordBytes} bytes in ${BATCH}-record requests, SQLite file; ${PUSH_CONCURRENCY} pushing clients, ${PULL_DEVICES} pulling devices (each pulls everything); median of ${ROUNDS} alternating rounds\n${line('push')}\n${line('pull')}\n`,
);
