import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createClient, type PushObservation } from '../src/client.ts';
import { CorruptValueError } from '../src/errors.ts';
import { FileStorage } from '../src/node.ts';
import { Outbox } from '../src/outbox.ts';
import { MemoryStorage, type SyncStorage, WebStorage } from '../src/storage.ts';

// No request is made by saving and reading the outbox; the address is never contacted.
const offline = (storage: SyncStorage) => createClient({ baseUrl: 'http://127.0.0.1:9', storage });
const fileStorage = () => new FileStorage(mkdtempSync(path.join(tmpdir(), 'synk-outbox-')));
const record = (id: string, n = 0) => ({
  observation_id: id,
  form_type: 'visit',
  data: { n },
  deleted: false,
});

/** What a push records for a record the server refused. */
const refusal = (r: PushObservation) => ({
  record: r,
  code: 'forbidden',
  error: '',
  at: '2026-01-01T00:00:00Z',
});

/** Sends `records` as the batch `transmissionId`, which the server refuses whole. */
async function refuse(outbox: Outbox, records: PushObservation[], transmissionId: string): Promise<void> {
  await outbox.saveMany(records);
  const batch = await outbox.nextBatch(records.length, () => transmissionId);
  await outbox.finishBatch(transmissionId, batch!.records.map(refusal));
}

/** `localStorage` as browsers keep it: a quota on the total length of its keys and values. */
function quotaStorage(quota: number): Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> {
  const values = new Map<string, string>();
  let used = 0;
  const size = (key: string) => (values.has(key) ? key.length + values.get(key)!.length : 0);
  return {
    getItem: (key) => values.get(key) ?? null,
    setItem(key, value) {
      const grown = used - size(key) + key.length + value.length;
      if (grown > quota) throw new DOMException('the quota has been exceeded', 'QuotaExceededError');
      used = grown;
      values.set(key, value);
    },
    removeItem(key) {
      used -= size(key);
      values.delete(key);
    },
  };
}

/** Dies once, as the process would, on the first delete of `key` (after `dying` is set). */
class DyingStorage extends MemoryStorage {
  readonly key: string;
  dying: boolean;
  constructor(key: string, dying = true) {
    super();
    this.key = key;
    this.dying = dying;
  }
  override async delete(key: string): Promise<void> {
    if (key === this.key && this.dying) {
      this.dying = false;
      throw new Error('the process died');
    }
    await super.delete(key);
  }
}

/** Fails once, as a dying process or a full disk would, the first write of `key` once `dying` is set. */
class DiesWriting extends MemoryStorage {
  readonly key: string;
  dying = false;
  constructor(key: string) {
    super();
    this.key = key;
  }
  override async set(key: string, value: unknown): Promise<void> {
    if (key === this.key && this.dying) {
      this.dying = false;
      throw new Error('the process died');
    }
    await super.set(key, value);
  }
}

/**
 * What file storage keeps through a power cut: its writes are fsynced with their directory, which
 * makes the deletes before them durable too; its deletes alone are not.
 */
class PowerCutStorage extends MemoryStorage {
  /** Values deleted since the last write, which a power cut now brings back. */
  readonly #unsynced = new Map<string, unknown>();
  override async set(key: string, value: unknown): Promise<void> {
    await super.set(key, value);
    this.#unsynced.clear();
  }
  override async delete(key: string): Promise<void> {
    const value = await super.get(key);
    if (value !== undefined && !this.#unsynced.has(key)) this.#unsynced.set(key, value);
    await super.delete(key);
  }
  async cut(): Promise<void> {
    for (const [key, value] of this.#unsynced) await super.set(key, value);
    this.#unsynced.clear();
  }
}

/** Counts the bytes each `set` writes, and the keys written. */
class MeteredStorage extends MemoryStorage {
  written = 0;
  keys: string[] = [];
  override async set(key: string, value: unknown): Promise<void> {
    this.written += JSON.stringify(value).length;
    this.keys.push(key);
    await super.set(key, value);
  }
}

describe('the outbox', () => {
  it.each([
    ['memory', () => new MemoryStorage()],
    ['file', fileStorage],
  ])('keeps every one of 200 concurrent saves, in call order (%s storage)', async (_, make) => {
    const client = offline(make());
    await Promise.all(Array.from({ length: 200 }, (_, i) => client.records.save(record(`r${i}`, i))));
    const pending = await client.records.pending();
    expect(pending.map((r) => r.observation_id)).toEqual(Array.from({ length: 200 }, (_, i) => `r${i}`));
  });

  it('a newer save of a queued id replaces it in place', async () => {
    const client = offline(new MemoryStorage());
    for (const id of ['a', 'b', 'c']) await client.records.save(record(id, 1));
    await client.records.save({ ...record('b', 2), deleted: true });
    const pending = await client.records.pending();
    expect(pending.map((r) => [r.observation_id, r.data, r.deleted])).toEqual([
      ['a', { n: 1 }, false],
      ['b', { n: 2 }, true],
      ['c', { n: 1 }, false],
    ]);
  });

  it('names the files of ids that differ only in case apart even when case is folded (macOS, Windows)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-outbox-case-'));
    const client = offline(new FileStorage(dir));
    for (const [n, id] of ['ABC', 'abc', 'Abc'].entries()) await client.records.save(record(id, n));
    const names = readdirSync(dir);
    expect(new Set(names.map((name) => name.toLowerCase())).size).toBe(names.length);
    const pending = await offline(new FileStorage(dir)).records.pending();
    expect(pending.map((r) => [r.observation_id, r.data])).toEqual([
      ['ABC', { n: 0 }],
      ['abc', { n: 1 }],
      ['Abc', { n: 2 }],
    ]);
  });

  it('survives a restart from file storage, ids of any length and script included', async () => {
    const storage = fileStorage();
    const long = `é${'x'.repeat(254)}`;
    const first = offline(storage);
    await first.records.save(record(long));
    await first.records.save(record('ward/7 "north"'));
    const sizes: number[] = [];
    const second = offline(storage);
    second.on('queue:size', ({ pending }) => sizes.push(pending));
    await second.records.save(record('third'));
    expect((await second.records.pending()).map((r) => r.observation_id)).toEqual([
      long,
      'ward/7 "north"',
      'third',
    ]);
    expect(sizes).toEqual([3]);
  });

  it('a save writes the same few bytes whether 1 or 1,000 records are queued', async () => {
    const storage = new MeteredStorage();
    const client = offline(storage);
    const big = (id: string) => ({ ...record(id), data: { note: 'n'.repeat(1000) } });
    storage.written = 0;
    await client.records.save(big('first'));
    const firstSave = storage.written;
    for (let i = 0; i < 1000; i++) await client.records.save(big(`r${i}`));
    storage.written = 0;
    await client.records.save(big('last'));
    // The queue itself is ~1 MB; the save writes its record and the id list (~10 bytes per id).
    expect(storage.written).toBeLessThan(firstSave + 12 * 1001);
    expect(storage.written).toBeLessThan(20_000);
  });

  it('saveMany writes the id list once and each record once, however many records the call and the queue hold', async () => {
    const storage = new MeteredStorage();
    const client = offline(storage);
    const queued = Array.from({ length: 5000 }, (_, i) => record(`q${i}`, i));
    await client.records.saveMany(queued);
    storage.written = 0;
    storage.keys = [];
    // A duplicate id in the call is written once (its last copy), an id already queued not listed again.
    const saved = [
      ...Array.from({ length: 1000 }, (_, i) => record(`r${i}`, i)),
      record('r7', -1),
      record('q3', -1),
    ];
    await client.records.saveMany(saved);
    expect(storage.keys.filter((key) => key === 'outbox:ids')).toHaveLength(1);
    const ids = [...queued, ...saved.slice(0, 1000)].map((r) => r.observation_id);
    const records = saved.filter((r) => r.observation_id !== 'r7' || r.data.n === -1);
    expect(storage.written).toBe(
      JSON.stringify(ids).length + records.reduce((sum, r) => sum + JSON.stringify(r).length, 0),
    );
  });

  it('saveMany queues what the same saves one by one would, in flight and duplicate ids included', async () => {
    const outboxes = [new Outbox(new MemoryStorage()), new Outbox(new MemoryStorage())] as const;
    for (const outbox of outboxes) {
      for (const id of ['a', 'b', 'c', 'd', 'e']) await outbox.save(record(id, 1));
      await outbox.nextBatch(3, () => 'tx-1'); // a, b and c in flight
    }
    // In flight (a, c), queued (e), new (f, g), twice in the call (c, f).
    const saves = [
      record('c', 2),
      record('f', 1),
      record('a', 2),
      record('f', 2),
      record('g', 1),
      record('e', 2),
      record('c', 3),
    ];
    for (const r of saves) await outboxes[0].save(r);
    await outboxes[1].saveMany(saves);

    const state = async (outbox: Outbox) => {
      const pending = (await outbox.pending()).map((r) => [r.observation_id, r.data.n]);
      const halves = await outbox.splitBatch('tx-1', () => 'tx-2');
      const batches = [];
      for (let n = 3; ; n++) {
        const batch = await outbox.nextBatch(2, () => `tx-${n}`);
        if (!batch) break;
        batches.push(batch);
        await outbox.finishBatch(batch.transmission_id);
      }
      return { pending, halves, batches };
    };
    const sequential = await state(outboxes[0]);
    expect(sequential.pending).toEqual([
      ['a', 1],
      ['b', 1],
      ['c', 1],
      ['d', 1],
      ['e', 2],
      ['c', 3],
      ['f', 2],
      ['a', 2],
      ['g', 1],
    ]);
    expect(await state(outboxes[1])).toEqual(sequential);
  });

  it('moves a queue stored by an earlier version over, and skips an id whose record never got written', async () => {
    const storage = new MeteredStorage();
    await storage.set('outbox:queue', [record('old-1'), record('old-2')]);
    storage.keys = [];
    const outbox = new Outbox(storage);
    expect((await outbox.pending()).map((r) => r.observation_id)).toEqual(['old-1', 'old-2']);
    // As saveMany: one write of the id list for the whole queue, not one per record.
    expect(storage.keys).toEqual(['outbox:ids', 'outbox:record:old-1', 'outbox:record:old-2']);
    await outbox.save(record('new'));
    await storage.set('outbox:ids', ['ghost', ...((await storage.get<string[]>('outbox:ids')) ?? [])]);
    expect((await outbox.pending()).map((r) => r.observation_id)).toEqual(['old-1', 'old-2', 'new']);
    expect(await storage.get('outbox:queue')).toBeUndefined();

    const batch = await outbox.nextBatch(2, () => 'tx-1');
    expect(batch).toEqual({ transmission_id: 'tx-1', records: [record('old-1')] });
    // Until the server answers, the same batch comes back (same transmission id), also after a restart.
    expect(await new Outbox(storage).nextBatch(2, () => 'tx-2')).toEqual(batch);
    await outbox.finishBatch('tx-1');
    const next = await outbox.nextBatch(5, () => 'tx-3');
    expect(next?.records.map((r) => r.observation_id)).toEqual(['old-2', 'new']);
    // An answer for a batch no longer in flight (another push moved on) finishes nothing.
    await outbox.finishBatch('tx-1');
    expect((await outbox.pending()).map((r) => r.observation_id)).toEqual(['old-2', 'new']);
    await outbox.finishBatch('tx-3');
    expect(await outbox.nextBatch(5, () => 'tx-4')).toBeUndefined();
    expect(await outbox.sizes()).toEqual({ pending: 0, deadLetters: 0 });
  });

  it('keeps the client id a batch was first sent as, also for the half kept in flight by a split', async () => {
    const storage = new MemoryStorage();
    await new Outbox(storage).saveMany([record('a'), record('b'), record('c')]);
    await new Outbox(storage).nextBatch(2, () => 'tx-1', 'device-1');
    // After a restart under another client id, the batch in flight is still device-1's.
    const restarted = new Outbox(storage);
    expect(await restarted.nextBatch(2, () => 'tx-2', 'device-2')).toMatchObject({
      transmission_id: 'tx-1',
      client_id: 'device-1',
    });
    await restarted.splitBatch('tx-1', () => 'tx-3');
    expect(await restarted.nextBatch(2, () => 'tx-4', 'device-2')).toEqual({
      transmission_id: 'tx-3',
      client_id: 'device-1',
      records: [record('a')],
    });
    await restarted.finishBatch('tx-3');
    expect(await restarted.nextBatch(2, () => 'tx-5', 'device-2')).toMatchObject({
      transmission_id: 'tx-5',
      client_id: 'device-2',
    });
  });

  it('splits a batch refused as too large: half stays in flight under a new id, the rest is queued first, a newer save wins', async () => {
    const storage = new MemoryStorage();
    const outbox = new Outbox(storage);
    for (const id of ['a', 'b', 'c', 'd', 'e']) await outbox.save(record(id, 1));
    await outbox.nextBatch(4, () => 'tx-1');
    // Saved again while its older copy is in flight: the newer copy must not be replaced.
    await outbox.save(record('d', 2));
    expect(await outbox.splitBatch('tx-other', () => 'tx-2')).toBe(0); // not the batch in flight
    expect(await outbox.splitBatch('tx-1', () => 'tx-2')).toBe(2);
    expect(await new Outbox(storage).nextBatch(4, () => 'tx-3')).toEqual({
      transmission_id: 'tx-2',
      records: [record('a', 1), record('b', 1)],
    });
    expect((await outbox.pending()).map((r) => [r.observation_id, r.data])).toEqual([
      ['a', { n: 1 }],
      ['b', { n: 1 }],
      ['c', { n: 1 }],
      ['e', { n: 1 }],
      ['d', { n: 2 }],
    ]);
    // A batch of one cannot be split.
    await outbox.finishBatch('tx-2');
    await outbox.nextBatch(1, () => 'tx-4');
    expect(await outbox.splitBatch('tx-4', () => 'tx-5')).toBe(1);
    expect((await outbox.nextBatch(1, () => 'tx-6'))?.transmission_id).toBe('tx-4');
  });

  it('a crash between storing a batch in flight and taking it out of the queue sends its records once', async () => {
    const storage = new DiesWriting('outbox:ids');
    await new Outbox(storage).saveMany([record('a', 1), record('b', 1), record('c', 1)]);
    storage.dying = true;
    // Stored in flight; the process dies before the queue is written without a and b.
    await expect(new Outbox(storage).nextBatch(2, () => 'tx-1')).rejects.toThrow('the process died');
    const restarted = new Outbox(storage);
    await restarted.save(record('b', 2)); // saved again after the restart: a newer copy, to be sent after
    expect((await restarted.pending()).map((r) => [r.observation_id, r.data])).toEqual([
      ['a', { n: 1 }],
      ['b', { n: 1 }],
      ['c', { n: 1 }],
      ['b', { n: 2 }],
    ]);
    expect(await restarted.nextBatch(2, () => 'tx-2')).toEqual({
      transmission_id: 'tx-1',
      records: [record('a', 1), record('b', 1)],
    });
    await restarted.finishBatch('tx-1');
    // Not a and b again under another transmission id: the server would apply them a second time.
    expect(await restarted.nextBatch(5, () => 'tx-3')).toEqual({
      transmission_id: 'tx-3',
      records: [record('c', 1), record('b', 2)],
    });
  });

  it('a failed write between storing a batch in flight and taking it out of the queue is mended by the next push', async () => {
    const storage = new DiesWriting('outbox:ids');
    const outbox = new Outbox(storage);
    await outbox.saveMany([record('a', 1), record('b', 1), record('c', 1)]);
    storage.dying = true;
    await expect(outbox.nextBatch(2, () => 'tx-1')).rejects.toThrow('the process died');
    // Saved again meanwhile, its id still queued: the queued copy is replaced, and must stay queued.
    await outbox.save(record('b', 2));
    // The same outbox (no restart) goes on with the batch in flight, and sends a once.
    expect((await outbox.nextBatch(2, () => 'tx-2'))?.transmission_id).toBe('tx-1');
    await outbox.finishBatch('tx-1');
    expect((await outbox.nextBatch(5, () => 'tx-3'))?.records).toEqual([record('b', 2), record('c', 1)]);
  });

  it('a batch finished just before a power cut stays finished (it is not sent again, maybe past the server’s memory of it)', async () => {
    const storage = new PowerCutStorage();
    const outbox = new Outbox(storage);
    await outbox.saveMany([record('a'), record('b')]);
    await outbox.nextBatch(5, () => 'tx-1');
    await outbox.finishBatch('tx-1'); // the server took it
    await storage.cut();
    const rebooted = new Outbox(storage);
    expect(await rebooted.nextBatch(5, () => 'tx-2')).toBeUndefined();
    expect(await rebooted.sizes()).toEqual({ pending: 0, deadLetters: 0 });
  });

  it('records the dead letters of a batch once, however often the same answer comes (a re-send after a crash is replayed)', async () => {
    // Dies between recording the batch's dead letters and finishing it.
    const storage = new DiesWriting('outbox:inflight');
    const outbox = new Outbox(storage);
    await outbox.saveMany([record('a'), record('b')]);
    await outbox.nextBatch(2, () => 'tx-1');
    storage.dying = true;
    const answer = [refusal(record('a')), refusal(record('b'))];
    await expect(outbox.finishBatch('tx-1', answer)).rejects.toThrow('the process died');
    const restarted = new Outbox(storage);
    expect((await restarted.nextBatch(2, () => 'tx-2'))?.transmission_id).toBe('tx-1'); // re-sent, answered again
    await restarted.finishBatch('tx-1', answer);
    await refuse(restarted, [record('a')], 'tx-3'); // refused again in a later batch: replaces the first
    expect((await restarted.deadLetters()).map((d) => [d.record.observation_id, d.transmissionId])).toEqual([
      ['b', 'tx-1'],
      ['a', 'tx-3'],
    ]);
    expect(await restarted.sizes()).toEqual({ pending: 0, deadLetters: 2 });
  });

  it('retries dead letters into the queue (the latest copy of each id, none over a newer save) and clears them', async () => {
    const storage = new MemoryStorage();
    const client = offline(storage);
    const outbox = new Outbox(storage);
    await refuse(outbox, [record('a', 1), record('b', 1), record('c', 1)], 'tx-1');
    await refuse(outbox, [record('a', 2), record('d', 1)], 'tx-2');
    await client.records.save(record('b', 2)); // saved again since: this copy wins
    const sizes: { pending: number; deadLetters: number }[] = [];
    client.on('queue:size', (event) => sizes.push(event));

    expect(await client.records.retryDeadLetters(['a', 'b'])).toBe(1);
    expect((await client.records.pending()).map((r) => [r.observation_id, r.data])).toEqual([
      ['b', { n: 2 }],
      ['a', { n: 2 }],
    ]);
    expect((await client.records.deadLetters()).map((d) => d.record.observation_id)).toEqual(['c', 'd']);
    expect(sizes.at(-1)).toEqual({ pending: 2, deadLetters: 2 });

    expect(await client.records.clearDeadLetters(['d', 'nope'])).toBe(1);
    expect((await client.records.deadLetters()).map((d) => d.record.observation_id)).toEqual(['c']);
    expect(await client.records.retryDeadLetters()).toBe(1);
    expect((await client.records.pending()).map((r) => r.observation_id)).toEqual(['b', 'a', 'c']);
    expect(await client.records.clearDeadLetters()).toBe(0);
    expect(sizes.at(-1)).toEqual({ pending: 3, deadLetters: 0 });
  });

  it('a dead letter goes once a newer copy of its record has been pushed, so a retry never queues it over that copy', async () => {
    const outbox = new Outbox(new MemoryStorage());
    const letters = async () =>
      (await outbox.deadLetters()).map((d) => [d.record.observation_id, d.record.data, d.transmissionId]);
    /** Sends the next batch; the server takes it. */
    const accept = async (transmissionId: string) => {
      await outbox.nextBatch(10, () => transmissionId);
      await outbox.finishBatch(transmissionId);
    };
    // a: saved again after it was refused. b: saved again while its refused copy was in flight.
    await refuse(outbox, [record('a', 1)], 'tx-1');
    await outbox.save(record('b', 1));
    await outbox.nextBatch(10, () => 'tx-2');
    await outbox.saveMany([record('b', 2), record('a', 2)]);
    await outbox.finishBatch('tx-2', [refusal(record('b', 1))]);
    // Until the newer copies have been sent, the dead letters stay.
    expect(await letters()).toEqual([
      ['a', { n: 1 }, 'tx-1'],
      ['b', { n: 1 }, 'tx-2'],
    ]);
    await accept('tx-3');
    expect(await letters()).toEqual([]);
    expect(await outbox.retryDeadLetters()).toBe(0);
    expect(await outbox.pending()).toEqual([]);
    // Refused in its turn, the newer copy's dead letter replaces the older one's.
    await refuse(outbox, [record('c', 1)], 'tx-4');
    await refuse(outbox, [record('c', 2)], 'tx-5');
    expect(await letters()).toEqual([['c', { n: 2 }, 'tx-5']]);
  });

  it('takes over an outbox kept in the storage it was kept in before, on first use, once, also after a crash mid-move', async () => {
    const earlier = new DyingStorage('outbox:ids', false);
    const before = new Outbox(earlier);
    await refuse(before, [record('d')], 'tx-0');
    await before.saveMany([record('a'), record('b')]);
    await before.nextBatch(1, () => 'tx-1'); // a in flight
    await before.save(record('a', 2)); // and a newer copy of it queued
    const state = new MemoryStorage();
    earlier.dying = true; // after copying into `state`, before `earlier` is emptied
    await expect(new Outbox(state, earlier).pending()).rejects.toThrow('the process died');

    const after = new Outbox(state, earlier);
    expect((await after.pending()).map((r) => [r.observation_id, r.data.n])).toEqual([
      ['a', 0],
      ['b', 0],
      ['a', 2],
    ]);
    expect((await after.deadLetters()).map((d) => [d.record.observation_id, d.transmissionId])).toEqual([
      ['d', 'tx-0'],
    ]);
    // The batch in flight keeps its transmission id: its re-send is answered by the server's replay.
    expect((await after.nextBatch(10, () => 'tx-2'))?.transmission_id).toBe('tx-1');
    for (const key of ['outbox:ids', 'outbox:inflight', 'outbox:dead', 'outbox:record:a', 'outbox:record:b'])
      expect(await earlier.get(key)).toBeUndefined();
    // Nothing is left to move into a later client's state.
    expect(await new Outbox(new MemoryStorage(), earlier).sizes()).toEqual({ pending: 0, deadLetters: 0 });
  });

  it('takes a smaller batch when the store has no room for a copy of a whole one, instead of never pushing again', async () => {
    // 150 records of ~1 KB in a store of 200 KB: saving them works, a copy of all of them in flight does not.
    const outbox = new Outbox(new WebStorage(quotaStorage(200_000)));
    const records = Array.from({ length: 150 }, (_, i) => ({
      ...record(`r${i}`),
      data: { text: 'x'.repeat(1000) },
    }));
    for (const r of records) await outbox.save(r);
    const sent: string[] = [];
    for (let n = 0; ; n++) {
      const batch = await outbox.nextBatch(500, () => `t${n}`);
      if (!batch) break;
      expect(batch.records.length).toBeLessThan(150);
      sent.push(...batch.records.map((r) => r.observation_id));
      await outbox.finishBatch(batch.transmission_id);
    }
    expect(sent).toEqual(records.map((r) => r.observation_id));
  });

  it('sets a queued record whose file is damaged aside as unreadable, and sends the rest', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-outbox-damaged-'));
    const outbox = new Outbox(new FileStorage(dir));
    await outbox.saveMany([record('a'), record('b'), record('c')]);
    const damaged = path.join(dir, 'outbox%3Arecord%3Ab.json');
    writeFileSync(damaged, '{"observation_id":"b","form_ty'); // cut short (by a damaged disk, or by hand)

    const restarted = new Outbox(new FileStorage(dir));
    expect((await restarted.pending()).map((r) => r.observation_id)).toEqual(['a', 'c']);
    expect(await restarted.nextBatch(5, () => 'tx-1')).toEqual({
      transmission_id: 'tx-1',
      records: [record('a'), record('c')],
    });
    await restarted.finishBatch('tx-1');
    const [letter, ...others] = await restarted.deadLetters();
    expect(others).toEqual([]);
    expect(letter).toMatchObject({ record: { observation_id: 'b' }, code: 'unreadable' });
    expect(letter!.error).toContain(damaged); // names the file
    expect(readFileSync(damaged, 'utf8')).toBe('{"observation_id":"b","form_ty'); // left for a person to look at
    expect(await restarted.retryDeadLetters()).toBe(0); // nothing to send
    expect(await restarted.sizes()).toEqual({ pending: 0, deadLetters: 1 });
    // Saved anew (from the app's own copy): sent, and the dead letter goes with the push.
    await restarted.save(record('b', 2));
    const batch = await restarted.nextBatch(5, () => 'tx-2');
    expect(batch?.records).toEqual([record('b', 2)]);
    await restarted.finishBatch('tx-2');
    expect(await restarted.sizes()).toEqual({ pending: 0, deadLetters: 0 });
  });

  it('stops with an error naming the file when the queue’s own list is damaged, rather than taking the queue for empty', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-outbox-damaged-'));
    await new Outbox(new FileStorage(dir)).saveMany([record('a'), record('b')]);
    writeFileSync(path.join(dir, 'outbox%3Aids.json'), '["a",');
    const error = await new Outbox(new FileStorage(dir))
      .nextBatch(5, () => 'tx-1')
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CorruptValueError);
    expect(error).toMatchObject({ key: 'outbox:ids', location: path.join(dir, 'outbox%3Aids.json') });
    const web = quotaStorage(1000);
    web.setItem('synk:outbox:ids', '["a"');
    await expect(new Outbox(new WebStorage(web)).pending()).rejects.toBeInstanceOf(CorruptValueError);
  });

  it('reads the files an earlier version wrote: a key without upper-case letters keeps its name', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-outbox-names-'));
    // As 0.1.0 named the queue's file (encodeURIComponent only).
    writeFileSync(path.join(dir, 'outbox%3Aqueue.json'), JSON.stringify([record('from-0.1.0')]));
    const pending = await offline(new FileStorage(dir)).records.pending();
    expect(pending.map((r) => r.observation_id)).toEqual(['from-0.1.0']);
  });
});
