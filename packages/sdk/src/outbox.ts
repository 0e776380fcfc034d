import { CorruptValueError } from './errors.ts';
import type { components } from './generated/schema.ts';
import { withLock } from './locks.ts';
import type { SyncStorage } from './storage.ts';

type PushObservation = components['schemas']['PushObservation'];

/**
 * A record the server refused, set aside so that it does not block the queue, with what the server
 * said about it (the optional fields are absent in dead letters recorded by earlier versions); or,
 * with code `unreadable`, a queued record whose stored copy could not be read back (`record` holds
 * only its id, `error` says why, naming the file).
 */
export interface DeadLetter {
  record: PushObservation;
  code: string;
  error: string;
  at: string;
  /** The batch the server refused it in. */
  transmissionId?: string;
  /** Field-level details, e.g. each path that breaks the form's schema. */
  errors?: components['schemas']['ProblemError'][];
  /** For a `conflict`: the version the server holds. */
  serverVersion?: number;
  /** For a `conflict` (the server's policy `reject`): the server's copy. */
  serverRecord?: components['schemas']['Observation'];
}

/** Which dead letters an operation applies to: those of these record ids, or all. */
const matching = (ids: readonly string[] | undefined) => {
  const wanted = ids && new Set(ids);
  return (entry: DeadLetter) => !wanted || wanted.has(entry.record.observation_id);
};

/** A push batch, stored with its transmission id before the first send. */
export interface Inflight {
  transmission_id: string;
  /**
   * The client id it is sent as. The server knows a transmission by (client_id, transmission_id),
   * so a re-send under another client id (one not kept across a restart) would be applied again,
   * over whatever other devices changed meanwhile. Absent in batches stored by earlier versions.
   */
  client_id?: string;
  records: PushObservation[];
}

const KEYS = {
  ids: 'outbox:ids',
  record: (id: string) => `outbox:record:${id}`,
  inflight: 'outbox:inflight',
  dead: 'outbox:dead',
  /** Before 0.1.1 the whole queue was one value; it is moved over on first use. */
  legacyQueue: 'outbox:queue',
} as const;

/**
 * The dead letter of a queued record that cannot be read back (a damaged store, see
 * CorruptValueError): there is nothing left of it to send, only its id to report, so that the app
 * can save it again from its own copy. Its stored value is left as it is, for a person to look at.
 */
const UNREADABLE = 'unreadable';
const unreadable = (id: string, error: unknown): Omit<DeadLetter, 'transmissionId'> => ({
  record: { observation_id: id, form_type: '', data: {}, deleted: false },
  code: UNREADABLE,
  error: (error as Error).message,
  at: new Date().toISOString(),
});

/** The queued record of `id`: undefined when it never got written (a crash mid-save). */
async function readRecord(storage: SyncStorage, id: string): Promise<PushObservation | undefined | Error> {
  try {
    return await storage.get<PushObservation>(KEYS.record(id));
  } catch (err) {
    // Anything else (a read that failed) may not last: it stops the operation instead.
    if (CorruptValueError.is(err)) return err as Error;
    throw err;
  }
}

/**
 * The queued records of `ids` in `storage`; ids without a record (a crash mid-save) drop out, and
 * records that cannot be read come apart, as dead letters, so that they do not hold up the rest.
 */
async function readRecords(
  storage: SyncStorage,
  ids: readonly string[],
): Promise<{ records: PushObservation[]; unreadable: Omit<DeadLetter, 'transmissionId'>[] }> {
  const read = await Promise.all(ids.map((id) => readRecord(storage, id)));
  const records: PushObservation[] = [];
  const damaged: Omit<DeadLetter, 'transmissionId'>[] = [];
  read.forEach((record, i) => {
    if (record instanceof Error) damaged.push(unreadable(ids[i]!, record));
    else if (record !== undefined) records.push(record);
  });
  return { records, unreadable: damaged };
}

/**
 * The records waiting to be pushed, in storage. Each record is its own key and the queue order is
 * a list of ids, so a save writes its record and the id list (~10 bytes per queued id) rather than
 * every queued record: its cost barely grows with ten records queued or ten thousand (a field device
 * can be offline for days). Saving an id that is already queued replaces the queued copy in place.
 * `saveMany` writes the id list once for all its records.
 *
 * Writes are ordered so that a crash at any point loses nothing that a finished `save()` stored:
 * the id goes into the list before its record is written (an id without a record is skipped), and
 * a batch is stored as in flight before its records leave the queue (a crash in between leaves them
 * in both, and the next operation finishes taking them out, so that they are not sent again under
 * another transmission id). Each operation holds the storage's
 * `outbox` lock, so operations never interleave, whether they come from one client or from several
 * sharing the storage (two tabs on one IndexedDB, two processes on one directory): a save never
 * overwrites another's id, nor a batch taken the ids saved meanwhile. Two clients pushing at once
 * take the same batch in flight and send it under the same transmission id; the server answers the
 * second with the first's result.
 */
export class Outbox {
  readonly #storage: SyncStorage;
  readonly #earlier: SyncStorage | undefined;
  #migrated = false;

  /**
   * `earlier`: where an outbox may have been kept before this storage was chosen for it (the
   * client's `storage`, before it was given a `stateStorage`); whatever is there is moved over on
   * first use, so that switching storages leaves no queued or refused record behind.
   */
  constructor(storage: SyncStorage, earlier?: SyncStorage) {
    this.#storage = storage;
    this.#earlier = earlier;
  }

  /** Runs `operation` holding the outbox's lock: after every operation started before it, here or elsewhere. */
  #exclusive<T>(operation: () => Promise<T>): Promise<T> {
    return withLock(this.#storage, 'outbox', async () => {
      await this.#migrate();
      return operation();
    });
  }

  async #migrate(): Promise<void> {
    if (this.#migrated) return;
    if (this.#earlier) await this.#moveFrom(this.#earlier);
    const legacy = await this.#storage.get<PushObservation[]>(KEYS.legacyQueue);
    if (legacy?.length) await this.#queue(legacy);
    if (legacy) await this.#storage.delete(KEYS.legacyQueue);
    const inflight = await this.#inflight();
    if (inflight) await this.#completeTake(inflight);
    this.#migrated = true;
  }

  /**
   * Ends the taking of `inflight` out of the queue, when a crash (or a failed write) stopped it
   * between storing the batch and removing its ids: the queue then still starts with them, and they
   * would be sent again under another transmission id after this batch, which the server applies as
   * a new push, over whatever another device wrote meanwhile (or, with `base_version`, as a conflict
   * with this device's own first copy). The queue starts with the batch's ids in the batch's order
   * (and ids without a record, which a batch skips); of those, an id whose queued copy is no longer
   * the one in flight was saved again since and stays queued.
   */
  async #completeTake({ records: sent }: Inflight): Promise<void> {
    const ids = await this.#ids();
    const taken: string[] = [];
    const savedAgain: string[] = [];
    let matched = 0;
    let prefix = 0;
    while (matched < sent.length && prefix < ids.length) {
      const id = ids[prefix++]!;
      const queued = await readRecord(this.#storage, id);
      if (queued === undefined) continue; // never written: the batch skipped it
      // Not the queue this batch was taken from (or a damaged copy, which the next batch sets aside).
      if (id !== sent[matched]!.observation_id || queued instanceof Error) return;
      (JSON.stringify(queued) === JSON.stringify(sent[matched]) ? taken : savedAgain).push(id);
      matched += 1;
    }
    if (matched === 0 || matched < sent.length) return;
    await this.#storage.set(KEYS.ids, [...savedAgain, ...ids.slice(prefix)]);
    for (const id of taken) await this.#storage.delete(KEYS.record(id));
  }

  /**
   * Moves the outbox kept in `earlier` over: into this storage first, then out of `earlier`, so
   * that a crash in between has it moved again (the same copies, which replace themselves; a dead
   * letter moved already is not added twice). This storage is expected to hold nothing yet; if it
   * holds a batch in flight of its own, the batch from `earlier` is queued again instead.
   */
  async #moveFrom(earlier: SyncStorage): Promise<void> {
    const [ids = [], inflight, dead = [], legacy = []] = await Promise.all([
      earlier.get<string[]>(KEYS.ids),
      earlier.get<Inflight | null>(KEYS.inflight),
      earlier.get<DeadLetter[]>(KEYS.dead),
      earlier.get<PushObservation[]>(KEYS.legacyQueue),
    ]);
    if (ids.length === 0 && !inflight && dead.length === 0 && legacy.length === 0) return;
    const { records, unreadable: damaged } = await readRecords(earlier, ids);
    const queued = [...legacy, ...records];
    if (inflight) {
      const own = await this.#inflight();
      // The same transmission id: a re-send after the move is answered by the server's replay.
      if (!own) await this.#storage.set(KEYS.inflight, inflight);
      else if (own.transmission_id !== inflight.transmission_id) queued.unshift(...inflight.records);
    }
    if (queued.length > 0) await this.#queue(queued);
    if (damaged.length > 0) await this.#setAside(damaged);
    if (dead.length > 0) {
      const own = await this.#dead();
      const known = new Set(own.map((d) => JSON.stringify(d)));
      // Older than any of this storage's: first.
      await this.#storage.set(KEYS.dead, [...dead.filter((d) => !known.has(JSON.stringify(d))), ...own]);
    }
    for (const key of [KEYS.ids, KEYS.inflight, KEYS.dead, KEYS.legacyQueue]) await earlier.delete(key);
    for (const id of ids) await earlier.delete(KEYS.record(id));
  }

  /** The batch in flight; none once finished (stored as null, see finishBatch). */
  async #inflight(): Promise<Inflight | undefined> {
    return (await this.#storage.get<Inflight | null>(KEYS.inflight)) ?? undefined;
  }

  async #ids(): Promise<string[]> {
    return (await this.#storage.get<string[]>(KEYS.ids)) ?? [];
  }

  save(record: PushObservation): Promise<void> {
    return this.saveMany([record]);
  }

  /**
   * As many `save`s in order, with one write of the id list instead of one per record (that list
   * grows with the queue, so saving records one by one costs time quadratic in their number). An id
   * keeps its first place, in the queue or in `records`, and its last copy in `records`.
   */
  saveMany(records: readonly PushObservation[]): Promise<void> {
    return this.#exclusive(() => this.#queue(records));
  }

  async #queue(records: readonly PushObservation[]): Promise<void> {
    const ids = await this.#ids();
    const alreadyQueued = ids.length;
    const queued = new Set(ids);
    const latest = new Map<string, PushObservation>();
    for (const record of records) {
      if (!queued.has(record.observation_id)) {
        queued.add(record.observation_id);
        ids.push(record.observation_id);
      }
      latest.set(record.observation_id, record);
    }
    if (ids.length > alreadyQueued) await this.#storage.set(KEYS.ids, ids);
    for (const record of latest.values()) await this.#storage.set(KEYS.record(record.observation_id), record);
  }

  /**
   * The batch in flight, if any, else the next `size` queued records as a new batch to be sent as
   * `clientId` (stored first; fewer records when the store cannot hold a copy of that many).
   */
  nextBatch(size: number, transmissionId: () => string, clientId?: string): Promise<Inflight | undefined> {
    return this.#exclusive(async () => {
      const inflight = await this.#inflight();
      if (inflight) {
        await this.#completeTake(inflight);
        return inflight;
      }
      for (let take = size; ; ) {
        const ids = await this.#ids();
        const taken = ids.slice(0, take);
        if (taken.length === 0) return undefined;
        // Ids without a record (a crash mid-save) drop out; unreadable records are set aside first.
        const { records, unreadable: damaged } = await readRecords(this.#storage, taken);
        if (damaged.length > 0) await this.#setAside(damaged);
        if (records.length === 0) {
          await this.#storage.set(KEYS.ids, ids.slice(taken.length));
          continue;
        }
        const batch: Inflight = {
          transmission_id: transmissionId(),
          ...(clientId !== undefined ? { client_id: clientId } : {}),
          records,
        };
        try {
          await this.#storage.set(KEYS.inflight, batch);
        } catch (err) {
          // A full store (localStorage holds a few MiB) cannot take a copy of the batch beside its
          // queued records, and only a push frees space: a smaller batch, down to one record.
          if (taken.length === 1) throw err;
          take = Math.ceil(taken.length / 2);
          continue;
        }
        await this.#storage.set(KEYS.ids, ids.slice(taken.length));
        for (const { observation_id } of records) await this.#storage.delete(KEYS.record(observation_id));
        return batch;
      }
    });
  }

  /**
   * The server refused the batch in flight as too large (413; nothing of it was committed): it
   * keeps its first half, under a new transmission id, and the other half goes back to the front
   * of the queue, except ids saved again meanwhile (their newer copy is queued already). Returns
   * how many records it now holds (0: `refused` is no longer the batch in flight).
   */
  splitBatch(refused: string, transmissionId: () => string): Promise<number> {
    return this.#exclusive(async () => {
      const inflight = await this.#inflight();
      if (inflight?.transmission_id !== refused) return 0;
      if (inflight.records.length < 2) return inflight.records.length;
      const half = Math.ceil(inflight.records.length / 2);
      const ids = await this.#ids();
      const back: string[] = [];
      for (const record of inflight.records.slice(half)) {
        if (ids.includes(record.observation_id) || back.includes(record.observation_id)) continue;
        await this.#storage.set(KEYS.record(record.observation_id), record);
        back.push(record.observation_id);
      }
      // Queue first, then the smaller batch: a crash in between re-sends the whole batch (refused
      // again, nothing committed) and splits it again without queueing anything twice.
      await this.#storage.set(KEYS.ids, [...back, ...ids]);
      await this.#storage.set(KEYS.inflight, {
        ...inflight,
        transmission_id: transmissionId(),
        records: inflight.records.slice(0, half),
      });
      return half;
    });
  }

  /**
   * The server answered for the batch `transmissionId`: the records it refused are set aside and
   * the batch is done, in one step, so that nothing (a `retryDeadLetters` in particular) runs in
   * between and sees a refused record both set aside and in flight. Only that batch: another push
   * on the same storage (another tab or process) may have moved on to the next one. A record
   * already set aside from this batch is not recorded again: a crash between the two writes has the
   * batch re-sent, and the server replays its answer.
   *
   * The dead letters of the ids this batch sent, from earlier batches, go: they hold older copies (a
   * batch is taken only once the one before it is finished), and the server, which keeps the last
   * write, now has the newer copy or has refused it in its turn, so the older one must never be
   * queued again over it.
   */
  finishBatch(
    transmissionId: string,
    refused: readonly Omit<DeadLetter, 'transmissionId'>[] = [],
  ): Promise<void> {
    return this.#exclusive(async () => {
      const inflight = await this.#inflight();
      if (inflight?.transmission_id !== transmissionId) return;
      const dead = await this.#dead();
      const sent = new Set(inflight.records.map((r) => r.observation_id));
      const kept = dead.filter(
        (d) => d.transmissionId === transmissionId || !sent.has(d.record.observation_id),
      );
      const recorded = new Set(
        kept.filter((d) => d.transmissionId === transmissionId).map((d) => d.record.observation_id),
      );
      const fresh = refused
        .filter((d) => !recorded.has(d.record.observation_id))
        .map((d) => ({ ...d, transmissionId }));
      if (fresh.length > 0 || kept.length < dead.length)
        await this.#storage.set(KEYS.dead, [...kept, ...fresh]);
      // Written over rather than deleted: a write is durable once it returns, a delete may not be
      // (file storage fsyncs its writes, not its deletes), and a finished batch back after a power
      // cut would be sent again, past the server's memory of its transmission id a day later.
      await this.#storage.set(KEYS.inflight, null);
    });
  }

  /** In-flight records first, then the queue, in the order they will be sent. */
  pending(): Promise<PushObservation[]> {
    return this.#exclusive(async () => [
      ...((await this.#inflight())?.records ?? []),
      ...(await readRecords(this.#storage, await this.#ids())).records,
    ]);
  }

  sizes(): Promise<{ pending: number; deadLetters: number }> {
    return this.#exclusive(async () => ({
      pending: ((await this.#inflight())?.records.length ?? 0) + (await this.#ids()).length,
      deadLetters: (await this.#dead()).length,
    }));
  }

  async #dead(): Promise<DeadLetter[]> {
    return (await this.#storage.get<DeadLetter[]>(KEYS.dead)) ?? [];
  }

  /**
   * Adds the dead letters of unreadable records, once per id (a crash before its id left the queue
   * has it read again). Earlier dead letters of those ids go: they hold older copies, which must not
   * be queued again over the one that was lost.
   */
  async #setAside(damaged: readonly Omit<DeadLetter, 'transmissionId'>[]): Promise<void> {
    const dead = await this.#dead();
    const ids = new Set(damaged.map((d) => d.record.observation_id));
    const known = new Set(dead.filter((d) => d.code === UNREADABLE).map((d) => d.record.observation_id));
    const kept = dead.filter((d) => !ids.has(d.record.observation_id) || d.code === UNREADABLE);
    const fresh = damaged.filter((d) => !known.has(d.record.observation_id));
    if (fresh.length > 0 || kept.length < dead.length)
      await this.#storage.set(KEYS.dead, [...kept, ...fresh]);
  }

  /** Oldest first. */
  deadLetters(): Promise<DeadLetter[]> {
    return this.#exclusive(() => this.#dead());
  }

  /**
   * Queues dead-lettered records (of `ids`, or all) again, at the end of the queue, and drops their
   * dead letters. Of an id set aside more than once, the latest copy is queued; an id queued or in
   * flight already is not, as that copy was saved later, unless it is the refused copy itself, still
   * in flight after a crash before its batch was finished. Returns how many records were queued.
   */
  retryDeadLetters(ids?: readonly string[]): Promise<number> {
    return this.#exclusive(async () => {
      const dead = await this.#dead();
      const chosen = matching(ids);
      // An unreadable record has nothing to send: its dead letter stays until cleared or saved anew.
      const retried = dead.filter((d) => chosen(d) && d.code !== UNREADABLE);
      if (retried.length === 0) return 0;
      const queued = await this.#ids();
      const inflight = await this.#inflight();
      const newer = new Set(queued);
      const inFlight = new Set(inflight?.records.map((r) => r.observation_id));
      const hasNewerCopy = ({ record, transmissionId }: DeadLetter) =>
        newer.has(record.observation_id) ||
        (inFlight.has(record.observation_id) && inflight?.transmission_id !== transmissionId);
      const latest = new Map(retried.map((d) => [d.record.observation_id, d]));
      const requeued = [...latest.values()].filter((d) => !hasNewerCopy(d)).map((d) => d.record);
      // Records, then the queue, then the dead letters: a crash in between leaves a record both
      // queued and dead-lettered, which a second retry does not queue twice.
      for (const record of requeued) await this.#storage.set(KEYS.record(record.observation_id), record);
      await this.#storage.set(KEYS.ids, [...queued, ...requeued.map((r) => r.observation_id)]);
      await this.#storage.set(
        KEYS.dead,
        dead.filter((d) => !chosen(d) || d.code === UNREADABLE),
      );
      return requeued.length;
    });
  }

  /** Drops dead letters (of `ids`, or all); returns how many. */
  clearDeadLetters(ids?: readonly string[]): Promise<number> {
    return this.#exclusive(async () => {
      const dead = await this.#dead();
      const chosen = matching(ids);
      const kept = dead.filter((d) => !chosen(d));
      if (kept.length < dead.length) await this.#storage.set(KEYS.dead, kept);
      return dead.length - kept.length;
    });
  }
}
