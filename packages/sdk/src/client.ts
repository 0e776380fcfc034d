import { parseJson, parseJsonExact } from '@synk/json';
import createFetchClient, { type Middleware } from 'openapi-fetch';
import { type ChangesOptions, changeStream } from './changes.ts';
import { type ConflictPageOptions, conflictPages } from './conflicts.ts';
import {
  ApiError,
  CorruptValueError,
  isJsonAnswer,
  isTransientStatus,
  NetworkError,
  type Problem,
} from './errors.ts';
import { Emitter, type SyncEvents } from './events.ts';
import { attachmentHelpers, bundleHelpers } from './files.ts';
import type { components, paths } from './generated/schema.ts';
import { withLock } from './locks.ts';
import { type DeadLetter, Outbox } from './outbox.ts';
import { type ResyncMark, ResyncPass } from './resync.ts';
import { MemoryStorage, type SyncStorage } from './storage.ts';
import { type SyncClientPagesOptions, syncClientPages } from './sync-clients.ts';
import { createTransport, DEFAULT_RETRY, fetchHolding, guardBody, type RetryOptions } from './transport.ts';

type Schemas = components['schemas'];
export type Observation = Schemas['Observation'];
export type PushObservation = Schemas['PushObservation'];
/** A record to save: `deleted` defaults to false, as on the server. */
export type RecordInput = Omit<PushObservation, 'deleted'> & { deleted?: boolean };
/**
 * A page of `pullPages`: the server's answer, and `resync` on the pages of a full resync pass (see
 * ResyncMark): after the one marked `done`, delete the local records that are not in its `keep`.
 */
export type PullPage = Schemas['SyncPullResponse'] & { resync?: ResyncMark };
export type PushResponse = Schemas['SyncPushResponse'];
/**
 * A warning the server gave about a record it took: `CONFLICT` (last-write-wins replaced a newer
 * copy; see `server_version`), `SCHEMA_VALIDATION` (with path-level `errors`), `UNKNOWN_FORM_TYPE`.
 */
export type PushWarning = Schemas['SyncWarning'];

export interface Tokens {
  token: string;
  refreshToken: string;
  expiresAt: number;
}

/** How `auth.logout()` went on the server; the local session is deleted either way. */
export interface LogoutResult {
  /**
   * The server ended the session (a 2xx answer) or no longer knew it (401: expired or revoked
   * already); also true when no session was stored, so nothing was sent. False for any other answer
   * (e.g. a 502 from a proxy): the session's refresh token may still be valid there until it expires.
   */
  confirmed: boolean;
  /** The HTTP status the server answered the logout with; absent when nothing was sent. */
  status?: number;
}

export interface ClientOptions {
  baseUrl: string;
  /** Where the session (tokens), the client id and, unless `stateStorage` is given, the sync state persist (default: in memory). */
  storage?: SyncStorage;
  /**
   * Where the sync state persists, if not in `storage`: the outbox (queued, in-flight and
   * dead-lettered records) and the pull cursors. Both describe the app's local copy of the records,
   * so they belong with it: e.g. the app's own database, or memory for a one-off process (a script
   * or a CLI command) that keeps only the session. See `takeOverState` for an app that kept them
   * in `storage` so far.
   */
  stateStorage?: SyncStorage;
  /**
   * With `stateStorage`: move the sync state an earlier version of the app kept in `storage` into
   * it (the outbox on its first use, each pull cursor when first read), deleting it from `storage`.
   * Only for an app switching for good: never when `storage` is shared with another client that
   * keeps its own state there (a script borrowing an app's session would take the app's queue),
   * nor when both are adapters over one store (the copy would be deleted with the original).
   */
  takeOverState?: boolean;
  /** Identifies this device in pushes and pulls (default: generated once and kept in storage). */
  clientId?: string;
  /** Used to log in when no session is stored and on `login()` without arguments. */
  credentials?: { username: string; password: string };
  /** A session obtained elsewhere (e.g. handed over by an app's own login screen); stored unless one already is. */
  tokens?: Tokens;
  fetch?: (request: Request) => Promise<Response>;
  retry?: Partial<RetryOptions>;
  /** Per attempt (default 30 s): for the response headers, then for the body (see `TransportOptions.timeoutMs`). */
  timeoutMs?: number;
  /** Records per push batch (default 500). */
  batchSize?: number;
  /**
   * Read integers too long for a double (beyond ±(2^53 − 1), e.g. a 19-digit id in a record's
   * `data`) from the server's answers as `JSON.rawJSON` values, which JSON.stringify writes back
   * digit for digit (default false: they are the nearest numbers). For tools that move records
   * without reading them (the CLI's pull to a file and push from one), with a `stateStorage` that
   * keeps them too (`new MemoryStorage({ exactNumbers: true })`). Not for apps that compute with
   * the data: such a value is an object, not a number.
   */
  exactNumbers?: boolean;
}

export interface Conflict {
  id: string;
  message: string;
  serverVersion?: number;
}

/** Options of the paged pull helpers. */
export interface PullOptions {
  schemaTypes?: string[];
  limit?: number;
  /** Start after this version instead of the stored cursor, which then does not move (a one-off read). */
  since?: number;
  signal?: AbortSignal;
}

/**
 * What `sync()` does. An app that keeps a local copy of the records gives `apply`, and with it
 * `removeMissing`: after a full resync pass (the server purged tombstones this device may not have
 * seen, see ResyncMark), it must delete every local record (of `schemaTypes`) whose id is not in
 * `keep`, or records deleted on the server would stay on the device for ever.
 */
export type SyncHandlers = {
  onConflict?: (c: Conflict) => void;
  schemaTypes?: string[];
  /** Cancels the sync between (and inside) requests; what was applied or acknowledged stays. */
  signal?: AbortSignal;
} & (
  | { apply?: undefined; removeMissing?: undefined }
  | {
      apply: (records: Observation[], page: PullPage) => void | Promise<void>;
      /** Called once the final page of a resync pass is applied, before the pass ends (a crash repeats it). */
      removeMissing: (keep: ReadonlySet<string>, page: PullPage) => void | Promise<void>;
    }
);

/**
 * A push batch the server refused as a whole, not record by record: a JSON answer with a 4xx other
 * than 401, 408 and 429 (403 when the user's role was lowered to read-only while the device was
 * offline, 409 for a transmission id reused with other records), or a 413 for one record too large
 * alone. Its records are set aside as dead letters (`records.deadLetters()`), each with the same
 * `code` and `error`. A 4xx that is not JSON (a captive portal's or a proxy's page) refuses nothing:
 * the batch stays queued and `push()` throws it as an ApiError.
 */
export interface RefusedBatch {
  transmissionId: string;
  /** The HTTP status of the refusal. */
  status: number;
  /** The problem's `code` (e.g. `forbidden`), or `http_<status>` when the answer had none. */
  code: string;
  /** The server's words: the problem's `detail`, then its `errors` (about the request, not a record). */
  detail: string;
  /** The ids of the batch's records, in the order sent. */
  ids: string[];
}

/** What `push()` did: counts of records, and what the server said about them. */
export interface PushReport {
  /** Records the server took. */
  pushed: number;
  /** Records set aside as dead letters: refused one by one, or with their whole batch. */
  failed: number;
  conflicts: Conflict[];
  /** Every warning of the push, in the server's words, conflicts included (see `PushWarning`). */
  warnings: PushWarning[];
  /** The batches refused whole (their records count in `failed`); empty when none was. */
  refused: RefusedBatch[];
}

export interface SyncReport extends PushReport {
  /** True when this sync completed a full resync pass (`removeMissing` was called, if given). */
  resynced: boolean;
  pulled: number;
}

const KEYS = {
  tokens: 'auth:tokens',
  /** The refresh in progress: the token being exchanged and the exchange's Idempotency-Key. */
  refreshExchange: 'auth:refresh-exchange',
  clientId: 'client:id',
  cursor: (types: string[]) => `cursor:${types.length ? [...types].sort().join(',') : '*'}`,
} as const;

/**
 * A typed client for the sync API. `client.api` is the raw typed client (every operation of
 * openapi.yaml, `{ data, error, response }` results); the rest adds sessions, paging, the offline
 * outbox and `sync()`.
 */
export function createClient(options: ClientOptions) {
  const storage = options.storage ?? new MemoryStorage();
  const stateStorage = options.stateStorage ?? storage;
  /** Where to take earlier sync state from: only when asked (see `takeOverState`). */
  const formerState = options.takeOverState && stateStorage !== storage ? storage : undefined;
  const outbox = new Outbox(stateStorage, formerState);
  const events = new Emitter();
  const baseFetch = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const batchSize = options.batchSize ?? 500;
  /** Lowered when the server refuses a batch as too large (413): later batches are no bigger. */
  let batchLimit = batchSize;
  let refreshing: Promise<string | undefined> | undefined;

  const timeoutMs = options.timeoutMs ?? 30_000;
  // Login and refresh bypass the retrying transport (a 401 there must not trigger a refresh), but
  // not the timeouts, for the headers or the body: every request waiting on a shared refresh would
  // hang with a hung one (and the request's own timeout signal is lost with it after a GC).
  const raw = createFetchClient<paths>({
    baseUrl: options.baseUrl,
    fetch: async (request: Request) => {
      try {
        const response = await fetchHolding(
          baseFetch,
          new Request(request, { signal: AbortSignal.any([request.signal, AbortSignal.timeout(timeoutMs)]) }),
        );
        // The caller's signal (not the attempt's, with its header timeout) also ends the body's reading.
        return guardBody(response, timeoutMs, `${request.method} ${request.url}`, { request });
      } catch (err) {
        throw new NetworkError(`${request.method} ${request.url} failed: ${(err as Error).message}`, err);
      }
    },
  });
  /** The stored session; a damaged one is none (a login or the tokens given replace it). */
  const storedTokens = () => unlessCorrupt(storage.get<Tokens>(KEYS.tokens));
  // Stored before the first request reads the session (every read of it awaits this first).
  const seeded: Promise<void> = options.tokens
    ? (async () => {
        if (!(await storedTokens())) await storage.set(KEYS.tokens, options.tokens);
      })()
    : Promise.resolve();
  const readTokens = async () => {
    await seeded;
    return storedTokens();
  };

  async function storeTokens(tokens: Tokens): Promise<Tokens> {
    await storage.set(KEYS.tokens, tokens);
    await storage.delete(KEYS.refreshExchange); // whatever exchange was pending is answered or moot
    events.emit('auth:refreshed', { expiresAt: tokens.expiresAt });
    return tokens;
  }

  /**
   * The Idempotency-Key of the exchange of `refreshToken`, stored before it is first sent. A
   * refresh whose answer was lost (a dropped connection, the app killed) is sent again with the
   * same key, and the server answers it as the same exchange; without it the spent token would be
   * taken for a stolen one and the whole session revoked.
   */
  async function exchangeKey(refreshToken: string): Promise<string> {
    const pending = await storage.get<{ refreshToken: string; key: string }>(KEYS.refreshExchange);
    if (pending?.refreshToken === refreshToken) return pending.key;
    const key = globalThis.crypto.randomUUID();
    await storage.set(KEYS.refreshExchange, { refreshToken, key });
    return key;
  }

  /**
   * One refresh for any number of concurrent 401s; a rotated refresh token is stored at once. A
   * request that failed with a token older than the stored one just retries with the stored one.
   * Refreshes hold the storage's `auth` lock, and the stored session is read again once it is
   * held: another client of the storage (a tab, a process) may have refreshed meanwhile, and
   * sending the refresh token it spent would make the server revoke the whole session.
   *
   * Undefined when the server says the session cannot be renewed (and the credentials, if any, do
   * not log in). When it could not say (a 503 while it restarts, a 429, a proxy's 502), that
   * answer is thrown as an ApiError, and the request that needed the refresh gets it as its own:
   * its 401 would have the app take a passing outage for the end of the session (and ask the user
   * to log in again).
   */
  async function refresh(staleToken?: string): Promise<string | undefined> {
    const current = (await readTokens())?.token;
    if (staleToken !== undefined && current !== undefined && current !== staleToken) return current;
    if (refreshing) return refreshing;
    const run = withLock(storage, 'auth', async () => {
      const tokens = await readTokens();
      if (staleToken !== undefined && tokens !== undefined && tokens.token !== staleToken)
        return tokens.token;
      let unanswered: ApiError | undefined;
      if (tokens) {
        const { data, error, response } = await raw.POST('/auth/refresh', {
          body: { refreshToken: tokens.refreshToken },
          params: { header: { 'Idempotency-Key': await exchangeKey(tokens.refreshToken) } },
        });
        if (data) return (await storeTokens(data)).token;
        if (isTransientStatus(response.status))
          unanswered = ApiError.of(response, error as Problem | undefined);
      }
      if (options.credentials) {
        const { data, error, response } = await raw.POST('/auth/login', { body: options.credentials });
        if (data) return (await storeTokens(data)).token;
        if (isTransientStatus(response.status))
          unanswered ??= ApiError.of(response, error as Problem | undefined);
      }
      if (unanswered) throw unanswered;
      return undefined;
    });
    refreshing = run;
    // Forgotten however it ends, also when the lock itself could not be taken (the critical
    // section never ran): a failed refresh must not answer every later one.
    const forget = () => {
      if (refreshing === run) refreshing = undefined;
    };
    run.then(forget, forget);
    return run;
  }

  const transport = createTransport({
    fetch: baseFetch,
    retry: { ...DEFAULT_RETRY, ...options.retry },
    timeoutMs,
    accessToken: async () => (await readTokens())?.token,
    refresh,
  });
  const api = createFetchClient<paths>({ baseUrl: options.baseUrl, fetch: transport });
  api.use(jsonAnswers(options.exactNumbers ? parseJsonExact : parseJson));

  async function clientId(): Promise<string> {
    if (options.clientId) return options.clientId;
    // A damaged id is replaced by a new one, as a lost one would be (a batch in flight keeps its own).
    const stored = await unlessCorrupt(storage.get<string>(KEYS.clientId));
    if (stored) return stored;
    // Under the lock, read again: clients sharing the storage starting together get one id.
    return withLock(storage, 'client-id', async () => {
      const chosen = await unlessCorrupt(storage.get<string>(KEYS.clientId));
      if (chosen) return chosen;
      const fresh = globalThis.crypto.randomUUID();
      await storage.set(KEYS.clientId, fresh);
      return fresh;
    });
  }

  const auth = {
    async login(
      username = options.credentials?.username,
      password = options.credentials?.password,
    ): Promise<Tokens> {
      if (username === undefined || password === undefined)
        throw new Error('login needs a username and a password');
      const { data, error, response } = await api.POST('/auth/login', { body: { username, password } });
      if (!data) throw ApiError.of(response, error as Problem | undefined);
      // Stored once no refresh is on the wire (here or in another client of the storage: it holds
      // the `auth` lock): the earlier session it brings, stored after this one, would replace it,
      // and every later request would go as whoever was logged in before (a shared device).
      return withLock(storage, 'auth', () => storeTokens(data));
    },
    /**
     * Ends the session on the server (revoking its refresh token) and deletes it here, whatever the
     * server answered; the result tells whether the server confirmed it (see `LogoutResult`). A
     * server that cannot be reached throws `NetworkError` and the session is kept.
     */
    async logout(): Promise<LogoutResult> {
      // Both steps wait for a refresh on the wire (here or in another client of the storage: it
      // holds the `auth` lock): its answer, stored after the deletion, would leave a session here
      // after logout, and the token it brings is the one to end. The request itself is sent
      // without the lock: a 401 to it is answered by a refresh.
      const tokens = await withLock(storage, 'auth', readTokens);
      let result: LogoutResult = { confirmed: true };
      if (tokens) {
        const { response } = await api.POST('/auth/logout', { body: { refreshToken: tokens.refreshToken } });
        result = { confirmed: response.ok || response.status === 401, status: response.status };
      }
      await withLock(storage, 'auth', async () => {
        await storage.delete(KEYS.tokens);
        await storage.delete(KEYS.refreshExchange);
      });
      return result;
    },
    refresh,
    tokens: readTokens,
  };

  /**
   * The cursor stored under `key`. With `takeOverState`, one stored in `storage` before (cursors
   * are keyed by their schema types, so they cannot be listed up front) is moved over when first read.
   */
  async function storedCursor(key: string): Promise<number | undefined> {
    const cursor = await stateStorage.get<number>(key);
    if (cursor !== undefined || formerState === undefined) return cursor;
    const earlier = await formerState.get<number>(key);
    if (earlier === undefined) return undefined;
    await stateStorage.set(key, earlier);
    await formerState.delete(key);
    return earlier;
  }

  /**
   * Pages of changes after the stored cursor (or `since`), oldest first. The cursor is stored
   * only when the caller asks for the next page, i.e. after it has applied the previous one: a
   * crash mid-page repeats that page instead of skipping it. With `since` it is a one-off read
   * and the stored cursor stays where it is: the records it returns have not been applied by the
   * loop that syncs, so moving its cursor would make that loop skip them (nor does it resync:
   * its pages only say `resync_required`).
   *
   * When the server answers `resync_required` (it purged tombstones this device may not have
   * seen), that page is dropped and a full resync pass starts from version 0: its pages carry
   * `resync`, the last one `done: true` with the ids to `keep`. The pass is kept in the sync
   * state like the cursor, so an app restarted midway resumes it and still gets the final page.
   */
  async function* pullPages(pull: PullOptions = {}): AsyncGenerator<PullPage> {
    const types = pull.schemaTypes ?? [];
    const cursorKey = KEYS.cursor(types);
    const oneOff = pull.since !== undefined;
    let resync = oneOff ? undefined : await ResyncPass.resume(stateStorage, cursorKey);
    let stored: number | undefined;
    if (!resync && !oneOff) {
      try {
        stored = await storedCursor(cursorKey);
      } catch (err) {
        if (!CorruptValueError.is(err)) throw err;
        // A damaged cursor: what this device has seen is unknown, as after a tombstone purge.
        resync = await ResyncPass.begin(stateStorage, cursorKey, globalThis.crypto.randomUUID());
      }
    }
    let cursor: number = resync?.cursor ?? pull.since ?? stored ?? 0;
    for (;;) {
      const { data, error, response } = await api.POST('/sync/pull', {
        params: { query: { limit: pull.limit ?? 200 } },
        body: {
          client_id: await clientId(),
          since: { version: cursor },
          ...(types.length ? { schema_types: types } : {}),
        },
        ...(pull.signal ? { signal: pull.signal } : {}),
      });
      if (!data) throw ApiError.of(response, error as Problem | undefined);
      if (!oneOff && data.resync_required && (!resync || resync.outdatedBy(data))) {
        resync = await ResyncPass.begin(stateStorage, cursorKey, globalThis.crypto.randomUUID());
        cursor = 0;
        continue;
      }
      if (!resync) {
        yield data;
        cursor = data.change_cutoff;
        if (!oneOff) await stateStorage.set(cursorKey, cursor);
        if (!data.has_more) return;
        continue;
      }
      const ids = data.records.map((r) => r.observation_id);
      const mark = { pass: resync.pass, schemaTypes: types };
      if (data.has_more) {
        yield { ...data, resync: { ...mark, done: false } };
        await resync.applied(ids, data);
        cursor = data.change_cutoff;
        continue;
      }
      const unpushed = [
        ...(await outbox.pending()).map((r) => r.observation_id),
        ...(await outbox.deadLetters()).map((d) => d.record.observation_id),
      ];
      yield { ...data, resync: { ...mark, done: true, keep: await resync.keep(ids, unpushed) } };
      await stateStorage.set(cursorKey, data.change_cutoff);
      await resync.finish();
      return;
    }
  }

  /**
   * Every page at once, for reading. Without `since` it moves the stored cursor like `pullPages`
   * (each page's cursor is stored when the next is fetched), so records it returns are not pulled
   * again: an app that must not lose them across a crash applies them page by page with
   * `pullPages` or `sync`. With `since` the stored cursor stays where it is.
   */
  async function pullAll(pull: PullOptions = {}): Promise<Observation[]> {
    const records: Observation[] = [];
    for await (const page of pullPages(pull)) records.push(...page.records);
    return records;
  }

  async function queueSizes() {
    const sizes = await outbox.sizes();
    events.emit('queue:size', sizes);
    return sizes;
  }

  async function saveMany(inputs: readonly RecordInput[]): Promise<void> {
    await outbox.saveMany(inputs.map((input) => ({ ...input, deleted: input.deleted ?? false })));
    await queueSizes();
  }

  const records = {
    /** Queues a record for the next push (a newer save of the same id replaces the queued one). */
    save: (input: RecordInput): Promise<void> => saveMany([input]),
    /**
     * Queues records for the next push as `save` would one after the other (an id saved twice keeps
     * its first place in the queue and its last copy), at a cost that grows with their number only,
     * not with their number times the queue's length.
     */
    saveMany,
    /** What the next pushes will send, in order. */
    pending: () => outbox.pending(),
    /** Records the server refused for good (with its `code`, `error` and details), set aside, oldest first. */
    deadLetters: () => outbox.deadLetters(),
    /**
     * Queues dead-lettered records (of these record ids, or all) for the next push again, e.g. once
     * the server's limits or the user's role have changed; an id saved again since keeps its newer
     * copy. Returns how many records were queued. An `unreadable` dead letter (a queued copy the
     * store damaged) has nothing to queue: save that record again.
     */
    async retryDeadLetters(ids?: readonly string[]): Promise<number> {
      const queued = await outbox.retryDeadLetters(ids);
      await queueSizes();
      return queued;
    },
    /** Forgets dead-lettered records (of these record ids, or all); returns how many dead letters went. */
    async clearDeadLetters(ids?: readonly string[]): Promise<number> {
      const cleared = await outbox.clearDeadLetters(ids);
      await queueSizes();
      return cleared;
    },
  };

  /**
   * Sends the outbox in batches. Each batch is stored with its transmission_id before the first
   * send and re-sent with the same id until the server acknowledges it, so a crash or a lost
   * response never duplicates or loses a record.
   */
  type PushOptions = { onConflict?: (conflict: Conflict) => void; signal?: AbortSignal };
  /** The push running now: pushes on one client run one after the other, never side by side. */
  let pushing: Promise<unknown> = Promise.resolve();
  function pushQueued(push: PushOptions = {}): Promise<PushReport> {
    const run = pushing.catch(() => undefined).then(() => pushBatches(push));
    pushing = run;
    return run;
  }

  async function pushBatches(push: PushOptions): Promise<PushReport> {
    let pushed = 0;
    let failed = 0;
    const conflicts: Conflict[] = [];
    const warnings: PushWarning[] = [];
    const refusedBatches: RefusedBatch[] = [];
    const newId = () => globalThis.crypto.randomUUID();
    for (;;) {
      const batch = await outbox.nextBatch(batchLimit, newId, await clientId());
      if (!batch) break;
      const { data, error, response } = await api.POST('/sync/push', {
        body: {
          transmission_id: batch.transmission_id,
          client_id: batch.client_id ?? (await clientId()),
          records: batch.records,
        },
        ...(push.signal ? { signal: push.signal } : {}),
      });
      const problem = error as Problem | undefined;
      const at = new Date().toISOString();
      let refused: Omit<DeadLetter, 'transmissionId'>[] = [];
      if (data) {
        // The record each entry is about: at its index or, from a server that gives none (1.0.3's
        // entries are untyped), by its id; one that names neither cannot be set aside, and a dead
        // letter without its record would stop every later push.
        refused = data.failed_records.flatMap((f) => {
          const record =
            (Number.isInteger(f.index) ? batch.records[f.index] : undefined) ??
            batch.records.find((r) => r.observation_id === f.observation_id);
          if (!record) return [];
          return [
            {
              record,
              code: f.code ?? 'failed',
              error: f.error ?? '',
              at,
              ...(f.errors ? { errors: f.errors } : {}),
              ...(f.server_version !== undefined ? { serverVersion: f.server_version } : {}),
              ...(f.server_record ? { serverRecord: f.server_record } : {}),
            },
          ];
        });
        for (const warning of data.warnings) {
          warnings.push(warning);
          if (warning.code !== 'CONFLICT') continue;
          const conflict = {
            id: warning.id,
            message: warning.message,
            ...(warning.server_version !== undefined ? { serverVersion: warning.server_version } : {}),
          };
          conflicts.push(conflict);
          push.onConflict?.(conflict);
        }
        pushed += batch.records.length - refused.length;
      } else if (response.status === 413 && batch.records.length > 1) {
        // Too large for this server (its record or byte limit): send it in halves, and later
        // batches no bigger, instead of setting the records aside.
        batchLimit = Math.max(1, await outbox.splitBatch(batch.transmission_id, newId));
        continue;
      } else if (
        response.status >= 400 &&
        response.status < 500 &&
        response.status !== 401 &&
        response.status !== 408 &&
        response.status !== 429 &&
        (response.status === 413 || isJsonAnswer(response))
      ) {
        // The server will never take this batch as it is (e.g. 409, or 413 for one record): keep it
        // aside, do not block the queue. Only a server's own answer (JSON) says so: an HTML 403 or
        // 404 comes from something between the device and the server (a captive portal, a filtering
        // proxy, a wrong URL), which says nothing about the records; the batch stays queued and the
        // push fails with that answer, to be tried again once the device is somewhere else. (A 413
        // is about the request's size whoever sends it: a proxy's limit too.) The problem is about the request, not one record: its
        // details (e.g. a field of the envelope) go into each record's message, not into `errors`,
        // which name the record's own fields.
        const details = (problem?.errors ?? []).map((e) => (e.path ? `${e.path}: ${e.message}` : e.message));
        const error = [problem?.detail, ...details].filter(Boolean).join('; ');
        const code = problem?.code ?? `http_${response.status}`;
        refused = batch.records.map((record) => ({ record, code, error, at }));
        refusedBatches.push({
          transmissionId: batch.transmission_id,
          status: response.status,
          code,
          detail: error,
          ids: batch.records.map((record) => record.observation_id),
        });
      } else {
        throw ApiError.of(response, problem);
      }
      failed += refused.length;
      await outbox.finishBatch(batch.transmission_id, refused);
      // After a batch the server took, the limit grows back (one record too large alone took it to 1).
      if (data) batchLimit = Math.min(batchSize, batchLimit * 2);
      events.emit('sync:progress', { phase: 'push', pulled: 0, pushed });
    }
    await queueSizes();
    return { pushed, failed, conflicts, warnings, refused: refusedBatches };
  }

  /**
   * Pushes the outbox, then pulls (applying each page before the cursor moves). In that order the
   * pull brings this device's own changes back with the versions the server gave them: pulled
   * first, it brought the copy of the last sync, which the app wrote over a record edited again
   * since (the newer edit gone from its database until the next sync, and an edit made meanwhile
   * based on the older copy and its version, a conflict with the device's own change). A push that
   * fails ends the sync before the pull, for the same reason.
   */
  async function sync(handlers: SyncHandlers = {}): Promise<SyncReport> {
    events.emit('sync:started', { at: new Date() });
    try {
      const pushResult = await pushQueued({
        ...(handlers.onConflict ? { onConflict: handlers.onConflict } : {}),
        ...(handlers.signal ? { signal: handlers.signal } : {}),
      });
      let pulled = 0;
      let resynced = false;
      for await (const page of pullPages({
        ...(handlers.schemaTypes ? { schemaTypes: handlers.schemaTypes } : {}),
        ...(handlers.signal ? { signal: handlers.signal } : {}),
      })) {
        await handlers.apply?.(page.records, page);
        if (page.resync?.done) {
          await handlers.removeMissing?.(page.resync.keep, page);
          resynced = true;
        }
        pulled += page.records.length;
        events.emit('sync:progress', { phase: 'pull', pulled, pushed: pushResult.pushed });
      }
      const report = { resynced, pulled, ...pushResult };
      events.emit('sync:completed', { pulled, pushed: report.pushed, failed: report.failed });
      return report;
    } catch (error) {
      events.emit('sync:failed', { error });
      throw error;
    }
  }

  const attachments = attachmentHelpers(
    api,
    options.baseUrl.replace(/\/+$/, ''),
    transport,
    clientId,
    events,
  );
  const bundles = bundleHelpers(options.baseUrl.replace(/\/+$/, ''), transport, stateStorage);

  return {
    api,
    /**
     * The authenticated, retrying fetch everything runs on (for requests the typed client cannot
     * express, e.g. streamed uploads: give it a function that builds the request, so that a retry
     * reads the file again instead of the whole upload being held in memory; see RequestSource).
     */
    fetch: transport,
    auth,
    attachments,
    bundles,
    pullPages,
    pullAll,
    /** Pages of the server's conflict log (admin), oldest first: `for await (const page of …)`. */
    conflictPages: (conflicts: ConflictPageOptions = {}) => conflictPages(api, conflicts),
    /** Every device's sync status, page by page (admin; see `syncClientPages`). */
    syncClientPages: (pages: SyncClientPagesOptions = {}) => syncClientPages(api, pages),
    /** `{ current_version }` each time the server's change counter grows: pull then (see `changeStream`). */
    changes: (watch: ChangesOptions = {}) =>
      changeStream({ baseUrl: options.baseUrl, fetch: transport }, watch),
    records,
    push: pushQueued,
    sync,
    clientId,
    on: <K extends keyof SyncEvents>(name: K, listener: (event: SyncEvents[K]) => void) =>
      events.on(name, listener),
  };
}

export type SyncClient = ReturnType<typeof createClient>;

/**
 * `read`, or undefined when the value it reads is damaged (CorruptValueError): for values whose loss
 * costs no more than doing again what stored them (a login, choosing a client id).
 */
async function unlessCorrupt<T>(read: Promise<T | undefined>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (CorruptValueError.is(err)) return undefined;
    throw err;
  }
}

/**
 * The JSON of the API's answers is read with the SDK's parser: `parseJson` (V8's escaped-key bug,
 * see transport.ts) or, with `exactNumbers`, `parseJsonExact`. openapi-fetch reads an answer
 * without a Content-Length (a streamed one, such as the attachment manifest) with its own
 * JSON.parse instead of Response.json, so such an answer is read here and handed on with its length.
 */
function jsonAnswers(parse: (text: string) => unknown): Middleware {
  return {
    async onResponse({ response, options }) {
      if (options.parseAs !== 'json' || !response.ok) return undefined;
      if (response.headers.has('content-length')) {
        response.json = async () => parse(await response.text());
        return response;
      }
      const text = await response.text();
      const headers = new Headers(response.headers);
      headers.set('content-length', String(new TextEncoder().encode(text).byteLength));
      const answer = new Response(text, {
        status: response.status,
        statusText: response.statusText,
        headers,
      });
      Object.defineProperty(answer, 'url', { value: response.url });
      answer.json = async () => parse(text);
      return answer;
    },
  };
}
