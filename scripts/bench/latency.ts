/**
 * 500 simulated devices on one server (SQLite file, its own process) doing a push + pull mix at
 * once. Prints p50/p95/p99 request latency and the error count (goals: p99 ≤ 250 ms, 0 errors).
 * Run twice: devices syncing back to back with no pause (a stress test), and devices pausing up to
 * 2 s between syncs. Usage: node latency.ts [devices=500] [rounds=4]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { clientsFor, device, percentile } from './load.ts';
import { benchEnv, spawnServer } from './spawn-server.ts';

const DEVICES = Number(process.argv[2] ?? 500);
const ROUNDS = Number(process.argv[3] ?? 4);
const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-bench-latency-'));
const server = await spawnServer(benchEnv(dataDir));
const [client] = await clientsFor([server.url], DEVICES);
for (const thinkMs of [0, 2000]) {
  const start = performance.now();
  const results = await Promise.all(
    Array.from({ length: DEVICES }, (_, d) => device(client!, d, ROUNDS, 10, 5000, thinkMs)),
  );
  const seconds = (performance.now() - start) / 1000;
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const errors = results.reduce((n, r) => n + r.errors, 0);
  const p99 = percentile(latencies, 99);
  process.stdout.write(
    `latency: ${DEVICES} devices × ${ROUNDS} push+pull rounds on SQLite, ${thinkMs ? `pausing up to ${thinkMs} ms between syncs` : 'back to back'}: ${latencies.length} requests in ${seconds.toFixed(1)} s\n` +
      `  p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms, p99 ${p99.toFixed(0)} ms (goal ≤ 250 ms: ${(p99 / 250).toFixed(2)}× of the budget), errors ${errors} (goal 0)${errors ? ` ${[...new Set(results.flatMap((r) => r.errorKinds))].join('; ')}` : ''}\n`,
  );
}
client!.close();
await server.stop();
rmSync(dataDir, { recursive: true, force: true });
