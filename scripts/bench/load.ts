import { randomUUID } from 'node:crypto';
import { jsonClient } from './http-client.ts';
import { adminToken } from './spawn-server.ts';

/** Logs in as the bootstrap admin and returns a client per server URL. */
export async function clientsFor(urls: string[], maxSockets: number) {
  const token = await adminToken(urls[0]!);
  return urls.map((u) => jsonClient(u, { authorization: `Bearer ${token}` }, maxSockets));
}

export interface DeviceResult {
  latencies: number[];
  errors: number;
  /** What went wrong: an HTTP status or a network error code. */
  errorKinds: string[];
  records: number;
}

/**
 * One simulated device: `rounds` times, push `batch` records, then pull every change since its
 * cursor (spec loop), timing each request.
 */
export async function device(
  client: ReturnType<typeof jsonClient>,
  id: number,
  rounds: number,
  batch: number,
  ids: number,
  thinkMs = 0,
): Promise<DeviceResult> {
  const result: DeviceResult = { latencies: [], errors: 0, errorKinds: [], records: 0 };
  let cursor = 0;
  const timed = async (path: string, body: string) => {
    const start = performance.now();
    try {
      const res = await client.post(path, body);
      result.latencies.push(performance.now() - start);
      if (res.status !== 200) {
        result.errors += 1;
        result.errorKinds.push(`HTTP ${res.status} ${res.text.slice(0, 120)}`);
      }
      return res.status === 200 ? (JSON.parse(res.text) as Record<string, unknown>) : undefined;
    } catch (err) {
      result.errors += 1;
      result.errorKinds.push((err as NodeJS.ErrnoException).code ?? String(err));
      return undefined;
    }
  };
  for (let round = 0; round < rounds; round++) {
    // Devices do not all start at the same instant, and pause between syncs.
    if (thinkMs > 0) await new Promise((r) => setTimeout(r, Math.random() * thinkMs));
    const records = Array.from({ length: batch }, (_, i) => ({
      observation_id: `dev-${(id * 7919 + round * 104729 + i) % ids}`,
      form_type: 'load',
      data: { device: id, round, value: i, note: 'n'.repeat(200) },
    }));
    const pushed = await timed(
      '/sync/push',
      JSON.stringify({ transmission_id: randomUUID(), client_id: `device-${id}`, records }),
    );
    if (pushed) result.records += batch;
    for (let page = 0; page < 20; page++) {
      const pulled = await timed(
        '/sync/pull?limit=200',
        JSON.stringify({ client_id: `device-${id}`, since: { version: cursor } }),
      );
      if (!pulled) break;
      result.records += (pulled.records as unknown[]).length;
      cursor = pulled.change_cutoff as number;
      if (!pulled.has_more) break;
    }
  }
  return result;
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}
