import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { userWithRole } from '../src/http.ts';
import { pull, push } from '../src/sync.ts';

const target = useTarget();

const PUSHERS = 4;
const PUSHES_PER_PUSHER = 25;
const PULLERS = 4;
const IDS = 60;

interface Seen {
  observation_id: string;
  version: number;
  data: { writer: number; step: number };
}

/**
 * The invariant that matters most (spec §4.3): a client that loops `since.version = change_cutoff`
 * while `has_more` never misses and never double-receives a record while others push concurrently.
 * Real HTTP on loopback: pushers overwrite a shared pool of ids (with retried transmissions) while
 * pullers page with small limits; once pushing stops, each puller's view must equal the server's.
 */
describe('paged pulls under concurrent pushes', () => {
  it('no puller misses, duplicates or reorders a change', async () => {
    const writer = await userWithRole(target, 'read-write');
    const reader = await userWithRole(target, 'read-only');
    let pushing = true;

    const pusher = async (w: number) => {
      for (let step = 0; step < PUSHES_PER_PUSHER; step++) {
        const size = 1 + ((w * 7 + step * 3) % 9);
        const records = Array.from({ length: size }, (_, i) => ({
          observation_id: `shared-${(w * 13 + step * 5 + i * 11) % IDS}`,
          form_type: i % 2 ? 'even' : 'odd',
          data: { writer: w, step },
        }));
        const transmissionId = randomUUID();
        const first = await push(target, writer.token, records, { transmissionId, clientId: `pusher-${w}` });
        expect(first.status).toBe(200);
        if (step % 5 === 0) {
          // A retried transmission (the response was "lost"): replayed, not re-applied.
          const retry = await push(target, writer.token, records, {
            transmissionId,
            clientId: `pusher-${w}`,
          });
          expect(retry.headers.get('idempotent-replayed')).toBe('true');
          expect(retry.body).toEqual(first.body);
        }
      }
    };

    const puller = async (p: number) => {
      const received: Seen[] = [];
      let cursor = 0;
      const loop = async () => {
        for (;;) {
          const res = await pull(
            target,
            reader.token,
            { client_id: `puller-${p}`, since: { version: cursor } },
            `?limit=${3 + p}`,
          );
          expect(res.status).toBe(200);
          received.push(...(res.body.records as Seen[]));
          expect(res.body.change_cutoff).toBeGreaterThanOrEqual(cursor);
          cursor = res.body.change_cutoff;
          if (!res.body.has_more) return;
        }
      };
      while (pushing) await loop();
      await loop();
      return received;
    };

    const pullers = Array.from({ length: PULLERS }, (_, p) => puller(p));
    await Promise.all(Array.from({ length: PUSHERS }, (_, w) => pusher(w)));
    pushing = false;
    const views = await Promise.all(pullers);

    const server = new Map<string, Seen>();
    const final = await pull(target, reader.token, { since: { version: 0 } }, '?limit=500');
    for (const r of final.body.records as Seen[]) server.set(r.observation_id, r);
    expect(final.body.has_more).toBe(false);
    expect(server.size).toBe(IDS);

    for (const received of views) {
      const versions = received.map((r) => r.version);
      // Never twice, always ascending: nothing is double-received or reordered.
      for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1]!);
      // Nothing is missed: applying what was received in order gives exactly the server's state.
      const view = new Map<string, Seen>();
      for (const r of received) view.set(r.observation_id, r);
      expect(view).toEqual(server);
    }
  });
});
