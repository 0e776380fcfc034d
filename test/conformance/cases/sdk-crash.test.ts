import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, MemoryStorage, type Observation, type SyncStorage } from '@synk/sdk';
import { FileStorage } from '@synk/sdk/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { call, login, userWithRole } from '../src/http.ts';

const target = useTarget();
let writer: { username: string; password: string };
beforeAll(async () => {
  writer = await userWithRole(target, 'read-write');
});

/**
 * The sync state of a process that is killed at its `at`-th write (counting sets and deletes): that
 * write does not happen, and the process does nothing more. The state itself (`kept`) is what the
 * next process finds.
 */
class KilledAtWrite implements SyncStorage {
  writes = 0;
  killed = false;
  readonly kept: SyncStorage;
  readonly at: number;
  constructor(kept: SyncStorage, at: number) {
    this.kept = kept;
    this.at = at;
  }
  async get<T>(key: string): Promise<T | undefined> {
    this.#alive();
    return this.kept.get<T>(key);
  }
  async set(key: string, value: unknown): Promise<void> {
    this.#write();
    await this.kept.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.#write();
    await this.kept.delete(key);
  }
  #alive() {
    if (this.killed) throw new Error('the process is dead');
  }
  #write() {
    this.#alive();
    this.writes += 1;
    if (this.writes === this.at) {
      this.killed = true;
      throw new Error('the process was killed');
    }
  }
}

/**
 * A fetch that counts, per record id, the pushes the server applied (answered 200 and not as a
 * replay), and can lose the answer of the `loseAnswer`-th push (the server commits it, the client
 * never hears back).
 */
function countingFetch() {
  const applied = new Map<string, number>();
  let pushes = 0;
  let loseAnswer = 0;
  const fetcher = async (request: Request) => {
    if (!request.url.endsWith('/sync/push')) return fetch(request);
    const { records } = (await request.clone().json()) as { records: { observation_id: string }[] };
    const response = await fetch(request);
    if (response.status === 200 && response.headers.get('idempotent-replayed') !== 'true')
      for (const { observation_id } of records)
        applied.set(observation_id, (applied.get(observation_id) ?? 0) + 1);
    pushes += 1;
    if (pushes === loseAnswer) throw new TypeError('fetch failed (the connection dropped before the answer)');
    return response;
  };
  return {
    fetch: fetcher,
    applied: (id: string) => applied.get(id) ?? 0,
    loseAnswerOf: (push: number) => {
      pushes = 0;
      loseAnswer = push;
    },
  };
}

describe('SDK killed mid-push', () => {
  it('at any write of a push, or with the answer lost, sends each record in exactly one applied push after a restart', async () => {
    const session = new MemoryStorage();
    const net = countingFetch();
    const options = { baseUrl: target.baseUrl, credentials: writer, storage: session, fetch: net.fetch };
    await createClient(options).auth.login();
    /** Each run that went wrong: where it was killed, and how many applied pushes each record was in. */
    const wrong: string[] = [];
    let runs = 0;
    for (const lostAnswer of [0, 1, 2]) {
      for (let at = 1; ; at++) {
        const state = new MemoryStorage();
        const ids = [0, 1, 2, 3, 4].map((i) => `killed-${lostAnswer}-${at}-${i}`);
        const app = createClient({ ...options, stateStorage: state, clientId: 'field-device' });
        // The third is invalid (an empty form type): the server refuses it, the rest commit.
        for (const id of ids)
          await app.records.save({
            observation_id: id,
            form_type: id.endsWith('-2') ? '' : 'visit',
            data: { id },
          });
        const dying = new KilledAtWrite(state, at);
        const first = createClient({
          ...options,
          stateStorage: dying,
          clientId: 'field-device',
          batchSize: 2,
          retry: { retries: 0 },
        });
        net.loseAnswerOf(lostAnswer);
        await first.push().catch(() => undefined);
        runs += 1;
        const restarted = createClient({
          ...options,
          stateStorage: state,
          clientId: 'field-device',
          batchSize: 2,
        });
        await restarted.push();
        const dead = (await restarted.records.deadLetters()).map((d) => d.record.observation_id);
        const pending = await restarted.records.pending();
        const counts = ids.map(net.applied);
        if (counts.some((n) => n !== 1) || dead.join() !== ids[2] || pending.length > 0)
          wrong.push(`killed at write ${at}, answer ${lostAnswer} lost: applied ${counts}, dead ${dead}`);
        if (!dying.killed) break; // `at` was past the last write of the push
      }
    }
    expect(runs).toBeGreaterThan(20);
    expect(wrong).toEqual([]);
  });

  it('between storing a batch in flight and taking it out of the queue: a restart does not send it again over a newer change', async () => {
    const net = countingFetch();
    const state = new MemoryStorage();
    const options = { baseUrl: target.baseUrl, credentials: writer, fetch: net.fetch, clientId: 'tablet-3' };
    const id = `taken-${Date.now()}`;
    await createClient({ ...options, stateStorage: state }).records.save({
      observation_id: id,
      form_type: 'visit',
      data: { by: 'tablet-3' },
    });
    // Killed at the second write of the push: the batch is stored in flight, the queue is not yet
    // written without it, nothing was sent.
    const dying = createClient({ ...options, stateStorage: new KilledAtWrite(state, 2) });
    await expect(dying.push()).rejects.toThrow('the process was killed');

    const other = (await login(target, writer.username, writer.password)).token;
    const restarted = createClient({
      ...options,
      stateStorage: state,
      fetch: async (request) => {
        const response = await net.fetch(request);
        // Once tablet-3's batch is in, another device changes the record.
        if (request.url.endsWith('/sync/push') && net.applied(id) === 1 && !changed) {
          changed = true;
          const push = await call(target, 'POST', '/sync/push', {
            token: other,
            body: {
              transmission_id: crypto.randomUUID(),
              client_id: 'other-device',
              records: [{ observation_id: id, form_type: 'visit', data: { by: 'other' } }],
            },
          });
          expect(push.body.failed_records).toEqual([]);
        }
        return response;
      },
    });
    let changed = false;
    expect(await restarted.push()).toMatchObject({ pushed: 1, failed: 0 });
    expect(changed).toBe(true);
    expect(net.applied(id)).toBe(1);
    const [stored] = (await restarted.pullAll({ since: 0 })).filter((r) => r.observation_id === id);
    expect(stored).toMatchObject({ data: { by: 'other' }, origin_client_id: 'other-device' });
  });
});

describe('SDK on a damaged store', () => {
  it('a queued record whose file cannot be read is set aside; the rest reach the server, and a new save of it follows', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-damaged-'));
    const options = { baseUrl: target.baseUrl, credentials: writer, storage: new FileStorage(dir) };
    const app = createClient(options);
    const ids = ['damaged-1', 'damaged-2', 'damaged-3'];
    for (const id of ids) await app.records.save({ observation_id: id, form_type: 'visit', data: { id } });
    writeFileSync(path.join(dir, 'outbox%3Arecord%3Adamaged-2.json'), '{"observation_id":"damag');

    const restarted = createClient({ ...options, storage: new FileStorage(dir) });
    expect(await restarted.sync()).toMatchObject({ pushed: 2, failed: 0 });
    expect((await restarted.records.deadLetters()).map((d) => [d.record.observation_id, d.code])).toEqual([
      ['damaged-2', 'unreadable'],
    ]);
    // The app saves it again from its own copy of the record.
    await restarted.records.save({
      observation_id: 'damaged-2',
      form_type: 'visit',
      data: { id: 'damaged-2' },
    });
    expect(await restarted.sync()).toMatchObject({ pushed: 1, failed: 0 });
    expect(await restarted.records.deadLetters()).toEqual([]);
    const pulled = await restarted.pullAll({ since: 0 });
    expect(
      pulled
        .filter((r) => ids.includes(r.observation_id))
        .map((r) => r.observation_id)
        .sort(),
    ).toEqual(ids);
  });

  it('a damaged session, client id or pull cursor is replaced: a new login, a new id, and a full resync pass', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-damaged-'));
    const type = `damaged-${crypto.randomUUID()}`;
    const options = { baseUrl: target.baseUrl, credentials: writer };
    const local = new Map<string, Observation>();
    const handlers = {
      schemaTypes: [type],
      apply: (records: Observation[]) => {
        for (const r of records) r.deleted ? local.delete(r.observation_id) : local.set(r.observation_id, r);
      },
      removeMissing: (keep: ReadonlySet<string>) => {
        for (const id of local.keys()) if (!keep.has(id)) local.delete(id);
      },
    };
    const app = createClient({ ...options, storage: new FileStorage(dir) });
    await app.records.save({ observation_id: `${type}-a`, form_type: type, data: {} });
    await app.sync(handlers);
    const before = await app.clientId();
    // A record the server never had, which only a full pass can tell.
    local.set(`${type}-stray`, { observation_id: `${type}-stray` } as Observation);
    const cursorFile = `cursor%3A${type}.json`; // the type's name has no upper-case letter to escape
    for (const file of ['auth%3Atokens.json', 'client%3Aid.json', cursorFile])
      writeFileSync(path.join(dir, file), '{"tru');

    const restarted = createClient({ ...options, storage: new FileStorage(dir) });
    await restarted.records.save({ observation_id: `${type}-b`, form_type: type, data: {} });
    expect(await restarted.sync(handlers)).toMatchObject({ pushed: 1, resynced: true });
    expect(await restarted.clientId()).not.toBe(before);
    expect([...local.keys()].sort()).toEqual([`${type}-a`, `${type}-b`]);
  });
});
