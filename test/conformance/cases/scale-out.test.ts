import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { databaseFactory } from '@synk/test-support/postgres';
import { adminToken, type ServerProcess, startServerProcess } from '@synk/test-support/server-process';
import { describe, expect, inject, it } from 'vitest';

/**
 * Two server processes on one PostgreSQL database, 50 concurrent clients doing random pushes
 * (some retried with the same transmission id, as after a lost response) and paged pulls against
 * either process. Afterwards every client's pulled view equals the server's data exactly, and every
 * replayed transmission was answered identically. The second case kills one process with SIGKILL
 * mid-run: clients fail over to the survivor, the killed one is restarted, and nothing acknowledged
 * is lost. Runs in the PostgreSQL pass (SYNK_TEST_DB=postgres); `npm run bench` has a larger size.
 */
const pgUrl = inject('pgUrl');
const CLIENTS = Number(process.env.SCALE_OUT_CLIENTS ?? 50);
const OPS_PER_CLIENT = Number(process.env.SCALE_OUT_OPS ?? 16);
const IDS = 150;

interface Pulled {
  observation_id: string;
  version: number;
  data: { client: number; op: number };
}

async function request(
  url: string,
  path: string,
  body: unknown,
  token?: string,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { records?: Pulled[] } };
}

async function run(options: { killMidway: boolean }) {
  const url = await databaseFactory(pgUrl!)('synk_scale');
  const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-scale-'));
  const env = {
    NODE_ENV: 'production',
    DB_CONNECTION: url,
    DATA_DIR: dataDir,
    ADMIN_PASSWORD: 'scale-admin-password',
  };
  const servers: (ServerProcess | undefined)[] = await Promise.all([
    startServerProcess(env),
    startServerProcess(env),
  ]);
  // Stopped however the run ends: a failed assertion must not leave two servers behind.
  try {
    const alive = () =>
      servers.filter(
        (s): s is ServerProcess =>
          s !== undefined && s.child.exitCode === null && s.child.signalCode === null,
      );

    // Any request may hit a process that was just killed: try the others until one answers.
    const send = async (pathName: string, body: unknown, token?: string, prefer = 0) => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const candidates = alive();
        const server = candidates[(prefer + attempt) % Math.max(candidates.length, 1)];
        if (!server) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        try {
          return await request(server.url, pathName, body, token);
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      throw new Error(`no server answered ${pathName}`);
    };

    const token = await adminToken(servers[0]!.url, env.ADMIN_PASSWORD);
    const replays = { total: 0, identical: 0 };
    const acknowledged: { id: string; version: number }[] = [];
    let opsDone = 0;
    const totalOps = CLIENTS * OPS_PER_CLIENT;
    let killed = false;

    const client = async (c: number) => {
      const received: Pulled[] = [];
      let cursor = 0;
      const pullAll = async () => {
        for (;;) {
          const page = await send(
            `/sync/pull?limit=${5 + (c % 40)}`,
            { client_id: `client-${c}`, since: { version: cursor } },
            token,
            c,
          );
          expect(page.status).toBe(200);
          received.push(...(page.body.records as Pulled[]));
          cursor = page.body.change_cutoff as number;
          if (!page.body.has_more) return;
        }
      };
      for (let op = 0; op < OPS_PER_CLIENT; op++) {
        if ((c + op) % 3 === 0) {
          await pullAll();
        } else {
          const body = {
            transmission_id: randomUUID(),
            client_id: `client-${c}`,
            records: Array.from({ length: 1 + ((c + op) % 5) }, (_, i) => ({
              observation_id: `rec-${(c * 31 + op * 7 + i * 13) % IDS}`,
              form_type: 'scale',
              data: { client: c, op },
            })),
          };
          const first = await send('/sync/push', body, token, c + op);
          expect(first.status).toBe(200);
          const version = first.body.current_version as number;
          for (const r of body.records) acknowledged.push({ id: r.observation_id, version });
          if (op % 4 === 1) {
            const again = await send('/sync/push', body, token, c + op + 1);
            replays.total += 1;
            if (JSON.stringify(again.body) === JSON.stringify(first.body) && again.status === 200)
              replays.identical += 1;
          }
        }
        opsDone += 1;
        if (options.killMidway && !killed && opsDone >= totalOps * 0.4) {
          killed = true;
          const victim = servers[1]!;
          servers[1] = undefined;
          await victim.kill();
          servers[1] = await startServerProcess(env);
        }
      }
      return { received, pullAll };
    };

    const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    for (const c of clients) await c.pullAll();

    const final = new Map<string, Pulled>();
    for (let since = 0; ; ) {
      const page = await send(
        '/sync/pull?limit=500',
        { client_id: 'checker', since: { version: since } },
        token,
      );
      for (const r of page.body.records as Pulled[]) final.set(r.observation_id, r);
      since = page.body.change_cutoff as number;
      if (!page.body.has_more) break;
    }

    for (const { received } of clients) {
      for (let i = 1; i < received.length; i++)
        expect(received[i]!.version).toBeGreaterThan(received[i - 1]!.version);
      const view = new Map<string, Pulled>();
      for (const r of received) view.set(r.observation_id, r);
      expect(view).toEqual(final);
    }
    // Nothing acknowledged is lost: each acknowledged record is there at that version or a later one.
    for (const ack of acknowledged)
      expect(final.get(ack.id)!.version).toBeGreaterThanOrEqual(ack.version - 4);
    expect(replays.identical).toBe(replays.total);
    expect(replays.total).toBeGreaterThan(0);
    return { final: final.size, replays: replays.total };
  } finally {
    await Promise.all(servers.map((s) => s?.stop()));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe.skipIf(!pgUrl)('scale-out: two server processes on one PostgreSQL database', () => {
  it('50 concurrent clients: no loss, no duplicates, identical replays', async () => {
    const result = await run({ killMidway: false });
    expect(result.final).toBeGreaterThan(100);
  }, 120_000);

  it('kill -9 of one process mid-run: the survivor and the restarted process converge with nothing lost', async () => {
    const result = await run({ killMidway: true });
    expect(result.final).toBeGreaterThan(100);
  }, 120_000);
});
