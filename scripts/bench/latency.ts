/**
 * 500 simulated devices on one server (SQLite file, its own process) doing a push + pull mix.
 * Prints p50/p95/p99 request latency, the error count (goals: p99 ≤ 250 ms, 0 errors), the request
 * rate and how busy the server's process was. Three load models, each on a fresh server:
 *  - field: each device syncs (pushes 10 records, then pulls every change since its cursor, pages
 *    of 200, until it has caught up), then pauses 10–30 s before its next sync; first syncs are
 *    spread over the first 30 s. Every device pulls every other device's changes, ~3,000–5,000
 *    records per sync. Devices in the field sync every few minutes at most, so this is already a
 *    heavy day for 500 devices. The latency goal is judged on this model.
 *  - busy: pauses of 0–2 s instead (at most 20 pull pages a sync): more work arrives than one
 *    process can serve, so requests queue.
 *  - stress: no pause at all. A closed loop of 500 clients keeps ~500 requests queued, so latency
 *    is a queue length (≈ 500 × the cost of one request): these two measure throughput and
 *    behaviour under overload (no errors), not a latency budget.
 * Usage: node latency.ts [devices=500] [rounds=4]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cpuOf } from './cpu.ts';
import { clientsFor, type DeviceOptions, device, percentile } from './load.ts';
import { benchEnv, spawnServer } from './spawn-server.ts';

const DEVICES = Number(process.argv[2] ?? 500);
const ROUNDS = Number(process.argv[3] ?? 4);
const runs: { name: string; options: DeviceOptions }[] = [
  {
    name: 'field: syncing, then pausing 10–30 s',
    options: { rounds: ROUNDS, batch: 10, ids: 5000, pauseMs: [10_000, 30_000], maxPages: 100 },
  },
  { name: 'busy: pausing 0–2 s', options: { rounds: ROUNDS, batch: 10, ids: 5000, pauseMs: [0, 2000] } },
  { name: 'stress: back to back', options: { rounds: ROUNDS, batch: 10, ids: 5000 } },
];
for (const { name, options } of runs) {
  // A fresh server and database for each model.
  const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-bench-latency-'));
  const server = await spawnServer(benchEnv(dataDir));
  const [client] = await clientsFor([server.url], DEVICES);
  const cpuBefore = cpuOf(server.pid) ?? Number.NaN;
  const start = performance.now();
  const results = await Promise.all(Array.from({ length: DEVICES }, (_, d) => device(client!, d, options)));
  const ms = performance.now() - start;
  const busy = (((cpuOf(server.pid) ?? Number.NaN) - cpuBefore) * 1000) / ms;
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const errors = results.reduce((n, r) => n + r.errors, 0);
  const p99 = percentile(latencies, 99);
  process.stdout.write(
    `latency, ${name}: ${DEVICES} devices × ${ROUNDS} syncs on SQLite, ${latencies.length} requests in ${(ms / 1000).toFixed(1)} s (${Math.round(latencies.length / (ms / 1000))} req/s, server process busy ${Math.round(busy * 100)}% of one core)\n` +
      `  p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms, p99 ${p99.toFixed(0)} ms (goal ≤ 250 ms: ${(p99 / 250).toFixed(2)}× of the budget), errors ${errors} (goal 0)${errors ? ` ${[...new Set(results.flatMap((r) => r.errorKinds))].join('; ')}` : ''}\n`,
  );
  client!.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
