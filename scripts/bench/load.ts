import { randomUUID } from 'node:crypto';
import { jsonClient } from './http-client.ts';
import { benchToken } from './spawn-server.ts';

/** Logs in as the bootstrap admin and returns a client per server URL. */
export async function clientsFor(urls: string[], maxSockets: number) {
  const token = await benchToken(urls[0]!);
  return urls.map((u) => jsonClient(u, { authorization: `Bearer ${token}` }, maxSockets));
}

export interface DeviceResult {
  latencies: number[];
  errors: number;
  /** What went wrong: an HTTP status or a network error code. */
  errorKinds: string[];
  records: number;
}

export interface DeviceOptions {
  rounds: number;
  /** Records pushed per sync. */
  batch: number;
  /** Observation ids are drawn from this many, so later pushes update earlier records. */
  ids: number;
  /** Pause before each sync, drawn uniformly from [min, max] ms (the first from [0, max], to stagger starts). */
  pauseMs?: [min: number, max: number];
  /** Pull pages per sync at most (the rest waits for the next sync). */
  maxPages?: number;
}

/**
 * One simulated device: `rounds` times, push `batch` records, then pull every change since its
 * cursor (spec loop, pages of 200), timing each request.
 */
export async function device(
  client: ReturnType<typeof jsonClient>,
  id: number,
  { rounds, batch, ids, pauseMs = [0, 0], maxPages = 20 }: DeviceOptions,
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
    const [min, max] = pauseMs;
    const pause = round === 0 ? Math.random() * max : min + Math.random() * (max - min);
    if (pause > 0) await new Promise((r) => setTimeout(r, pause));
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
    for (let page = 0; page < maxPages; page++) {
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
