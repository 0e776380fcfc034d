import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/lib/canonical-json.ts';
import type { Principal } from '../src/modules/auth/auth.service.ts';
import type { SyncService } from '../src/modules/sync/sync.service.ts';
import { createTestApp, type TestApp } from './helpers.ts';

interface Pulled {
  observation_id: string;
  version: number;
  data: unknown;
  deleted: boolean;
}

const principal: Principal = { userId: 'u', username: 'prop-writer', role: 'read-write', sessionId: 's' };

/**
 * Random interleavings of pushes and paged pulls (fast-check's scheduler decides which waiting
 * operation runs next). Whatever the order, every puller that loops on `change_cutoff` ends up
 * having seen each change once, in version order, and holding exactly the server's final state.
 */
describe('sync invariants under random interleavings', () => {
  let t: TestApp;
  let sync: SyncService;
  beforeAll(async () => {
    t = await createTestApp();
    sync = t.ctx.services.sync;
  });
  const pull = async (...args: Parameters<SyncService['pull']>) =>
    JSON.parse(Buffer.concat(await sync.pull(...args)).toString());
  afterAll(() => t.close());

  const pushOp = fc.record({
    kind: fc.constant('push' as const),
    client: fc.integer({ min: 0, max: 2 }),
    records: fc.array(
      fc.record({
        id: fc.integer({ min: 0, max: 9 }),
        value: fc.integer({ min: 0, max: 3 }),
        deleted: fc.boolean(),
        type: fc.constantFrom('a', 'b'),
      }),
      { minLength: 0, maxLength: 6 },
    ),
    retry: fc.boolean(),
  });
  const pullOp = fc.record({
    kind: fc.constant('pull' as const),
    puller: fc.integer({ min: 0, max: 2 }),
    limit: fc.integer({ min: 1, max: 4 }),
  });

  it('pullers never miss, duplicate or reorder changes', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.oneof(pushOp, pullOp), { minLength: 1, maxLength: 30 }),
        async (s, ops) => {
          run += 1;
          const prefix = `run${run}-`;
          const start = (await pull(principal, { client_id: 'x' }, { limit: 1 })).current_version as number;
          const cursors = [start, start, start];
          const received: Pulled[][] = [[], [], []];
          const pullPage = async (p: number, limit: number) => {
            const page = await pull(
              principal,
              { client_id: `p${p}`, since: { version: cursors[p]! } },
              { limit },
            );
            received[p]!.push(
              ...(page.records as Pulled[]).filter((r) => r.observation_id.startsWith(prefix)),
            );
            cursors[p] = page.change_cutoff;
            return page.has_more as boolean;
          };
          const doPush = async (op: (typeof ops)[number] & { kind: 'push' }) => {
            const body = {
              transmission_id: randomUUID(),
              client_id: `c${op.client}`,
              records: op.records.map((r) => ({
                observation_id: `${prefix}${r.id}`,
                form_type: r.type,
                data: { value: r.value },
                deleted: r.deleted,
              })),
            };
            const bodyHash = sha256Hex(JSON.stringify(body));
            const first = await sync.push(principal, body, undefined, bodyHash);
            if (op.retry) {
              const again = await sync.push(principal, body, undefined, bodyHash);
              expect(again.replayed).toBe(true);
              expect(again.response).toEqual(first.response);
            }
          };
          // A client runs one pull at a time (its cursor is sequential state); pushes and other
          // clients' pulls interleave freely.
          const chains: Promise<unknown>[] = [Promise.resolve(), Promise.resolve(), Promise.resolve()];
          const running = ops.map((op) =>
            s.schedule(Promise.resolve(op.kind)).then(() => {
              if (op.kind === 'push') return doPush(op);
              chains[op.puller] = chains[op.puller]!.then(() => pullPage(op.puller, op.limit));
              return chains[op.puller];
            }),
          );
          await s.waitAll();
          await Promise.all(running);

          // Drain each puller, then compare with the server's state.
          for (let p = 0; p < 3; p++) while (await pullPage(p, 3));
          const final = await pull(
            principal,
            { client_id: 'check', since: { version: start } },
            { limit: 500 },
          );
          const server = new Map<string, Pulled>();
          for (const r of final.records as Pulled[])
            if (r.observation_id.startsWith(prefix)) server.set(r.observation_id, r);
          for (const log of received) {
            for (let i = 1; i < log.length; i++) expect(log[i]!.version).toBeGreaterThan(log[i - 1]!.version);
            const view = new Map<string, Pulled>();
            for (const r of log) view.set(r.observation_id, r);
            expect(view).toEqual(server);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
