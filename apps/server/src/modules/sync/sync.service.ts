import type { components, operations } from '@synk/contract';
import { parseJsonExact, withRoundedNumbers } from '@synk/json';
import type { Config } from '../../config.ts';
import { Conflict, HttpProblem, Invalid, PayloadTooLarge } from '../../http/errors.ts';
import { canonicalUuid } from '../../lib/uuid.ts';
import type { Principal } from '../auth/auth.service.ts';
import type { ChangeSignal } from './change-events.ts';
import type { SyncClientRow } from './client-activity.ts';
import { decodePageToken, encodePageToken, pageFilterDigest } from './page-token.ts';
import { PendingPulls } from './pending-pulls.ts';
import { type PushResponse, toObservation } from './push-decision.ts';
import { type FieldError, type IncomingRecord, validateRecord } from './records.ts';
import type { StoredRecord, SyncStore } from './sync.store.ts';

/** Checks a record's data against the active app bundle's form schema (spec §4.2). */
export interface FormSchemas {
  /** Brings the schemas up to date (the active bundle may have changed); called before each push is checked. */
  refresh?(): Promise<void>;
  check(
    formType: string,
    data: Record<string, unknown>,
  ): { status: 'no-bundle' | 'unknown-form' | 'valid' } | { status: 'invalid'; errors: FieldError[] };
}

/** Until an app bundle is active there is nothing to validate against. */
export const NO_FORM_SCHEMAS: FormSchemas = { check: () => ({ status: 'no-bundle' }) };

type Schemas = components['schemas'];
export type FailedRecord = Schemas['FailedRecord'];
export type SyncWarning = Schemas['SyncWarning'];
export type PullBody = Schemas['SyncPullRequest'];
export type ConflictList = Schemas['ConflictList'];
export type SyncClientList = Schemas['SyncClientList'];
export type TombstonePurgeBody = Schemas['TombstonePurgeRequest'];
export type TombstonePurgeResponse = Schemas['TombstonePurgeResponse'];

export type PushBody = Schemas['SyncPushRequest'];
type PullQuery = NonNullable<operations['syncPull']['parameters']['query']>;
/** The pull query with its default applied (`limit` is always known by then). */
export type PullParams = Omit<PullQuery, 'limit'> & { limit: number };

/**
 * The push's transmission id: the body's `transmission_id` or its alias, the Idempotency-Key
 * header (spec §4.2), as a canonical UUID, so the same id sent in another case is the same
 * transmission (clients differ: iOS writes UUIDs in upper case, JavaScript and Java in lower).
 */
function transmissionIdOf(fromBody: string | undefined, fromHeader: string | undefined): string {
  const body = fromBody === undefined ? undefined : canonicalUuid(fromBody);
  const header = fromHeader === undefined ? undefined : canonicalUuid(fromHeader);
  if (body !== undefined && header !== undefined && body !== header) {
    throw Invalid('The Idempotency-Key header must equal transmission_id when both are sent', [
      { path: '/header/idempotency-key', message: 'does not match transmission_id' },
    ]);
  }
  const id = body ?? header;
  if (id === undefined) {
    throw Invalid('A push needs a transmission_id (or an Idempotency-Key header carrying it)', [
      { path: '/body/transmission_id', message: 'is required unless the Idempotency-Key header is sent' },
    ]);
  }
  return id;
}

export interface SyncServiceDeps {
  store: SyncStore;
  config: Config;
  clock: () => Date;
  forms?: FormSchemas;
  /** Told of the version each committed push reached (event streams). */
  changes?: ChangeSignal;
}

interface Accepted {
  index: number;
  record: IncomingRecord;
}

const PURGE_EVERY_MS = 10 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Pulls of this many devices waiting in memory are written at once, without waiting for the timer. */
const PENDING_PULLS_FLUSH_AT = 1000;

const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export class SyncService {
  readonly #deps: SyncServiceDeps;
  #forms: FormSchemas;
  #lastPurge = 0;
  readonly #pendingPulls = new PendingPulls();
  /** The flush running now, if any: flushes run one after another. */
  #flushing: Promise<void> = Promise.resolve();
  #flushTimer: NodeJS.Timeout | undefined;
  #onFlushError: (err: unknown) => void = () => {};
  #earlyFlush = false;

  constructor(deps: SyncServiceDeps) {
    this.#deps = deps;
    this.#forms = deps.forms ?? NO_FORM_SCHEMAS;
  }

  /** Lets the app bundles module plug in schema validation once it exists. */
  useFormSchemas(forms: FormSchemas): void {
    this.#forms = forms;
  }

  /**
   * `bodyHash` fingerprints the request body as sent (sha256 of its bytes): a retry resends the
   * same bytes; anything else under the same transmission id is a different request. It may still
   * be computing elsewhere while the records are checked (it is awaited only before the store).
   */
  async push(
    principal: Principal,
    body: PushBody,
    idempotencyKey: string | undefined,
    bodyHash: string | Promise<string>,
  ): Promise<{ response: PushResponse; replayed: boolean }> {
    const { config, store } = this.#deps;
    const transmissionId = transmissionIdOf(body.transmission_id, idempotencyKey);
    if (body.records.length > config.limits.syncMaxRecords) {
      throw PayloadTooLarge(
        `A push may carry at most ${config.limits.syncMaxRecords} records (got ${body.records.length})`,
      );
    }
    const now = this.#deps.clock();
    const failed: FailedRecord[] = [];
    const warnings: SyncWarning[] = [];
    if (config.sync.validation !== 'off') await this.#forms.refresh?.();
    const accepted = this.#acceptRecords(body.records, failed, warnings);

    // Duplicate ids in one batch: the last valid occurrence wins, deterministically.
    const lastIndexById = new Map<string, number>();
    for (const a of accepted) lastIndexById.set(a.record.observation_id, a.index);
    const winners = accepted.filter((a) => {
      if (lastIndexById.get(a.record.observation_id) === a.index) return true;
      warnings.push({
        id: a.record.observation_id,
        code: 'DUPLICATE_IN_BATCH',
        message: `Superseded by a later record with the same observation_id (index ${lastIndexById.get(a.record.observation_id)})`,
      });
      return false;
    });

    const outcome = await store.push({
      clientId: body.client_id,
      username: principal.username,
      transmissionId,
      bodyHash: await bodyHash,
      nowMs: now.getTime(),
      expiresAtMs: now.getTime() + config.sync.idempotencyTtlSeconds * 1000,
      policy: config.sync.conflictPolicy,
      winners,
      checkedCount: accepted.length,
      failed,
      warnings,
    });
    this.#purgeNowAndThen(now.getTime());
    if (outcome.kind === 'mismatch') {
      throw Conflict(
        `transmission_id ${transmissionId} was already used by this client for a different request`,
        'transmission_conflict',
      );
    }
    if (outcome.kind === 'done') this.#deps.changes?.advanced(outcome.response.current_version);
    return { response: outcome.response, replayed: outcome.kind === 'replay' };
  }

  /**
   * One page of changes after the cursor, and the cursor to continue from: the response's JSON as
   * UTF-8 pieces to send one after another (the records are spliced in as the store wrote them).
   */
  async pull(principal: Principal, body: PullBody, params: PullParams): Promise<Buffer[]> {
    const types = [
      ...new Set([...(body.schema_types ?? []), ...(params.schemaType ? [params.schemaType] : [])]),
    ].sort();
    const filter = pageFilterDigest(types);
    let after = body.since?.version ?? body.after_change_id ?? 0;
    if (params.page_token !== undefined) {
      const cursor = decodePageToken(params.page_token);
      if (cursor === undefined) {
        throw new HttpProblem(400, 'invalid_page_token', 'page_token is not a token this server issued', {
          errors: [{ path: '/query/page_token', message: 'is malformed' }],
        });
      }
      if (cursor.filter !== filter) {
        throw new HttpProblem(
          400,
          'invalid_page_token',
          'page_token was issued for another filter: send the schema_types/schemaType it was issued with, or continue with since.version = change_cutoff',
          {
            errors: [
              { path: '/query/page_token', message: 'was issued for another schema_types/schemaType filter' },
            ],
          },
        );
      }
      after = cursor.version;
    }
    const page = await this.#deps.store.pull({
      afterVersion: after,
      formTypes: types.length > 0 ? types : null,
      limit: params.limit,
    });
    const changeCutoff =
      page.hasMore && page.lastVersion !== undefined ? page.lastVersion : page.currentVersion;
    // A cursor at 0 has nothing to unlearn; one from before the last purged tombstone may have
    // missed a deletion that is gone now (read with the page, so a purge cannot fall in between).
    const resyncRequired = after > 0 && after < page.purgedThrough;
    let tail = `],"change_cutoff":${changeCutoff},"has_more":${page.hasMore},"sync_format_version":"1.0"`;
    tail += `,"generation":${page.generation},"resync_required":${resyncRequired}`;
    if (page.hasMore) tail += `,"next_page_token":"${encodePageToken({ version: changeCutoff, filter })}"`;
    const now = this.#deps.clock();
    tail += `,"server_time":"${now.toISOString()}"}`;
    this.#pendingPulls.note(body.client_id, principal.username, now.getTime(), changeCutoff);
    if (this.#pendingPulls.size >= PENDING_PULLS_FLUSH_AT && !this.#earlyFlush) {
      // One early flush at a time: while it waits for the database, more pulls must not queue more.
      this.#earlyFlush = true;
      this.flushPulls()
        .catch(this.#onFlushError)
        .finally(() => {
          this.#earlyFlush = false;
        });
    }
    return [
      Buffer.from(`{"current_version":${page.currentVersion},"records":[`),
      page.recordsJson,
      Buffer.from(tail),
    ];
  }

  /** Deletes the tombstones last synced `older_than_days` days ago or earlier (by the injected clock). */
  async purgeTombstones(body: TombstonePurgeBody): Promise<TombstonePurgeResponse> {
    const dryRun = body.dry_run ?? false;
    const syncedBefore = new Date(this.#deps.clock().getTime() - body.older_than_days * DAY_MS).toISOString();
    const outcome = await this.#deps.store.purgeTombstones({
      syncedBefore,
      dryRun,
      batchSize: this.#deps.config.sync.tombstonePurgeBatch,
    });
    return {
      purged_count: outcome.purged,
      generation: outcome.generation,
      purged_through: outcome.purgedThrough,
      dry_run: dryRun,
    };
  }

  async conflicts(after: number, limit: number): Promise<ConflictList> {
    const rows = await this.#deps.store.conflicts(after, limit + 1);
    const hasMore = rows.length > limit;
    const page = hasMore ? rows.slice(0, limit) : rows;
    return {
      conflicts: page.map((c) => ({
        ...c,
        policy: c.policy as 'last-write-wins' | 'reject',
        incoming: parseJsonExact(c.incoming) as Schemas['PushObservation'],
        server: toObservation(parseJsonExact(c.server) as StoredRecord),
      })),
      has_more: hasMore,
      ...(hasMore && page.length > 0 ? { next_after: page.at(-1)!.id } : {}),
    };
  }

  /**
   * A page of devices by client_id, each with how many changes it has not pulled. This process's
   * pending pulls are written first; other processes' show up within their flush interval.
   */
  async clients(after: string, limit: number): Promise<SyncClientList> {
    await this.flushPulls();
    const { currentVersion, clients } = await this.#deps.store.syncClients(after, limit + 1);
    const hasMore = clients.length > limit;
    const page = hasMore ? clients.slice(0, limit) : clients;
    return {
      clients: page.map((c) => this.#clientStatus(c, currentVersion)),
      has_more: hasMore,
      ...(hasMore && page.length > 0 ? { next_after: page.at(-1)!.client_id } : {}),
      current_version: currentVersion,
    };
  }

  /**
   * Writes the pulls noted so far into the devices' status. A failed write keeps them for the next
   * flush (a later pull of the same device replaces its entry).
   */
  flushPulls(): Promise<void> {
    const run = this.#flushing.then(async () => {
      const pulls = this.#pendingPulls.take();
      if (pulls.length === 0) return;
      try {
        await this.#deps.store.recordActivity(pulls);
      } catch (err) {
        this.#pendingPulls.putBack(pulls);
        throw err;
      }
    });
    // The next flush waits for this one, however it ends.
    this.#flushing = run.catch(() => {});
    return run;
  }

  /** Flushes pending pulls every `intervalMs` until `close`; `onError` hears of failed flushes. */
  startFlushingPulls(intervalMs: number, onError: (err: unknown) => void): void {
    this.#onFlushError = onError;
    clearInterval(this.#flushTimer);
    this.#flushTimer = setInterval(() => this.flushPulls().catch(onError), intervalMs);
    this.#flushTimer.unref();
  }

  /** Stops the flush timer and writes what is pending (graceful shutdown). */
  async close(): Promise<void> {
    clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.flushPulls();
  }

  #clientStatus(c: SyncClientRow, currentVersion: number): Schemas['SyncClient'] {
    return {
      client_id: c.client_id,
      username: c.username,
      first_seen_at: new Date(c.first_seen_at).toISOString(),
      last_seen_at: new Date(c.last_seen_at).toISOString(),
      last_push_at: isoOrNull(c.last_push_at),
      last_pull_at: isoOrNull(c.last_pull_at),
      highest_pushed_version: c.highest_pushed_version,
      change_cutoff: c.change_cutoff,
      // A device that never pulled has every change still to pull.
      behind_by: Math.max(0, currentVersion - (c.change_cutoff ?? 0)),
      push_count: c.push_count,
      records_accepted: c.records_accepted,
    };
  }

  #acceptRecords(records: unknown[], failed: FailedRecord[], warnings: SyncWarning[]): Accepted[] {
    const mode = this.#deps.config.sync.validation;
    const accepted: Accepted[] = [];
    records.forEach((raw, index) => {
      const result = validateRecord(raw);
      if ('errors' in result) {
        failed.push({
          index,
          ...(result.observationId !== undefined ? { observation_id: result.observationId } : {}),
          code: 'invalid_record',
          error: result.errors.map((e) => `${e.path || 'record'} ${e.message}`).join('; '),
          errors: result.errors,
        });
        return;
      }
      const { record } = result;
      // A tombstone's data is not checked: a schema's required fields would make a record that
      // never met them undeletable, and a form the bundle dropped would keep its records forever.
      if (mode !== 'off' && !record.deleted) {
        // The schema sees numbers: an integer kept digit for digit (parseJsonExact) as the nearest
        // one (a walk as cheap as the schema's own; data without one is not copied).
        const data = withRoundedNumbers(result.data) as Record<string, unknown>;
        const check = this.#forms.check(record.form_type, data);
        if (check.status === 'unknown-form') {
          warnings.push({
            id: record.observation_id,
            code: 'UNKNOWN_FORM_TYPE',
            message: `The active app bundle has no form ${record.form_type}`,
          });
        } else if (check.status === 'invalid') {
          const message = `data does not match the schema of form ${record.form_type}`;
          if (mode === 'reject') {
            failed.push({
              index,
              observation_id: record.observation_id,
              code: 'schema_validation',
              error: message,
              errors: check.errors,
            });
            return;
          }
          warnings.push({
            id: record.observation_id,
            code: 'SCHEMA_VALIDATION',
            message,
            errors: check.errors,
          });
        }
      }
      accepted.push({ index, record });
    });
    return accepted;
  }

  #purgeNowAndThen(nowMs: number): void {
    if (nowMs - this.#lastPurge < PURGE_EVERY_MS) return;
    this.#lastPurge = nowMs;
    this.#deps.store.purgeTransmissions(nowMs).catch(() => {
      this.#lastPurge = 0;
    });
  }
}
