/**
 * Push/pull throughput on PostgreSQL with one and with two server processes (each in its own
 * process, sharing one database), at 50 concurrent clients. Prints records/s for each and the
 * ratio two/one (goal ≥ 1.6×). Usage: node scale-out.ts [clients=50] [rounds=6]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPostgres } from '@synk/test-support/postgres';
import { type CpuSplit, cpuSplit, formatSplit } from './cpu.ts';
import { clientsFor, device } from './load.ts';
import { benchEnv, spawnServer } from './spawn-server.ts';

const CLIENTS = Number(process.argv[2] ?? 50);
const ROUNDS = Number(process.argv[3] ?? 6);
const postgres = await startPostgres();

async function measure(processes: number): Promise<{ rate: number; errors: number; cpu: CpuSplit }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-bench-scale-'));
  const env = benchEnv(dataDir, { DB_CONNECTION: await postgres.createDatabase('synk_bench') });
  const servers = [];
  for (let i = 0; i < processes; i++) servers.push(await spawnServer(env));
  const clients = await clientsFor(
    servers.map((s) => s.url),
    CLIENTS,
  );
  const cpu = cpuSplit(
    servers.map((s) => s.pid),
    postgres.pid,
  );
  const start = performance.now();
  const results = await Promise.all(
    Array.from({ length: CLIENTS }, (_, c) =>
      device(clients[c % clients.length]!, c, { rounds: ROUNDS, batch: 50, ids: 20_000 }),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  const split = cpu.stop();
  for (const c of clients) c.close();
  for (const s of servers) await s.stop();
  rmSync(dataDir, { recursive: true, force: true });
  return {
    rate: results.reduce((n, r) => n + r.records, 0) / seconds,
    errors: results.reduce((n, r) => n + r.errors, 0),
    cpu: split,
  };
}

try {
  const one = await measure(1);
  const two = await measure(2);
  // What two processes could gain at most here: the cores the one-process run left unused by
  // the benchmark itself (servers, PostgreSQL and the clients all share this machine).
  const used = one.cpu.servers + one.cpu.postgres + one.cpu.clients;
  const ceiling = (one.cpu.cores - one.cpu.other) / used;
  process.stdout.write(
    `scale-out on PostgreSQL, ${CLIENTS} clients × ${ROUNDS} rounds of push(50)+pull:\n` +
      `  one process ${Math.round(one.rate).toLocaleString('en')} rec/s, two processes ${Math.round(two.rate).toLocaleString('en')} rec/s → ${(two.rate / one.rate).toFixed(2)}× (goal ≥ 1.6×); errors ${one.errors + two.errors}\n` +
      `  CPU, one process: ${formatSplit(one.cpu)}\n` +
      `  CPU, two processes: ${formatSplit(two.cpu)}\n` +
      `  ceiling on this machine: ${ceiling.toFixed(2)}× (the cores left over by the one-process run, if everything scaled perfectly)\n`,
  );
} finally {
  await postgres.stop();
}
