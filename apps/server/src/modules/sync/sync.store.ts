import type { components } from '@synk/contract';
import type { ConflictPolicy } from '../../config.ts';
import type { ClientActivity, SyncClientRow } from './client-activity.ts';
import type { IncomingRecord } from './records.ts';

/** A record as the database holds it; `data` and `geolocation` are JSON text, passed through untouched. */
export interface StoredRecord {
  observation_id: string;
  form_type: string;
  form_version: string | null;
  data: string;
  created_at: string | null;
  updated_at: string | null;
  synced_at: string;
  deleted: boolean;
  version: number;
  geolocation: string | null;
  hash: string;
  last_modified_by: string;
  origin_client_id: string;
}

/** The record's JSON (an Observation), with its stored `data`/`geolocation` text spliced in unparsed. */
export function observationJson(r: StoredRecord): string {
  let out = `{"observation_id":${JSON.stringify(r.observation_id)},"form_type":${JSON.stringify(r.form_type)}`;
  if (r.form_version !== null) out += `,"form_version":${JSON.stringify(r.form_version)}`;
  out += `,"data":${r.data}`;
  if (r.created_at !== null) out += `,"created_at":${JSON.stringify(r.created_at)}`;
  if (r.updated_at !== null) out += `,"updated_at":${JSON.stringify(r.updated_at)}`;
  out += `,"synced_at":${JSON.stringify(r.synced_at)},"deleted":${r.deleted},"version":${r.version}`;
  if (r.geolocation !== null) out += `,"geolocation":${r.geolocation}`;
  out += `,"hash":"${r.hash}","last_modified_by":${JSON.stringify(r.last_modified_by)},"origin_client_id":${JSON.stringify(r.origin_client_id)}}`;
  return out;
}

type Schemas = components['schemas'];

export type RecordWrite = Omit<StoredRecord, 'version'>;

export interface ConflictLog {
  observation_id: string;
  form_type: string;
  policy: string;
  base_version: number;
  server_version: number;
  client_id: string;
  username: string;
  transmission_id: string;
  detected_at: string;
  /** The record as pushed: a PushObservation's JSON text. */
  incoming: string;
  server: StoredRecord;
}

/** A push as the store runs it: plain data, so that it can be handed to another thread. */
export interface PushRequest {
  clientId: string;
  /** Who pushed: the device status keeps the latest user of each device. */
  username: string;
  transmissionId: string;
  /** Fingerprint of the whole request body, to tell a replay from a different request reusing the id. */
  bodyHash: string;
  nowMs: number;
  expiresAtMs: number;
  policy: ConflictPolicy;
  /** The records to store: those that passed the checks, the last of each id (`index` in the request). */
  winners: { index: number; record: IncomingRecord }[];
  /** How many records passed the checks, superseded duplicates in the batch included. */
  checkedCount: number;
  /** Records refused and warnings given before the store was reached. */
  failed: Schemas['FailedRecord'][];
  warnings: Schemas['SyncWarning'][];
}

/** The row that remembers a transmission and its answer, in the column order of REMEMBER_COLUMNS. */
export const REMEMBER_COLUMNS = 'client_id, transmission_id, body_hash, response, created_at, expires_at';
export function rememberValues(request: PushRequest, response: Schemas['SyncPushResponse']): unknown[] {
  return [
    request.clientId,
    request.transmissionId,
    request.bodyHash,
    JSON.stringify(response),
    request.nowMs,
    request.expiresAtMs,
  ];
}

export type PushOutcome =
  | { kind: 'done'; response: Schemas['SyncPushResponse'] }
  | { kind: 'replay'; response: Schemas['SyncPushResponse'] }
  | { kind: 'mismatch' };

export interface PullQuery {
  afterVersion: number;
  /** `null` = every form type. */
  formTypes: string[] | null;
  limit: number;
}

/** One page of changes, its records already written as JSON (see `observationJson`). */
export interface PullPage {
  /** The records as UTF-8 JSON objects separated by commas, in version order, without brackets. */
  recordsJson: Buffer;
  count: number;
  /** The version of the page's last record (`undefined` for an empty page). */
  lastVersion: number | undefined;
  currentVersion: number;
  hasMore: boolean;
  /** The repository's generation and purged_through (see TombstonePurge), read with the counter. */
  generation: number;
  purgedThrough: number;
}

/**
 * A purge of the tombstones last synced at or before `syncedBefore` (an ISO timestamp, as
 * `synced_at`): with 0 days, every tombstone pushed before the purge, even in its millisecond.
 */
export interface TombstonePurgeRequest {
  syncedBefore: string;
  /** Count what would go and answer what would become of the generation, changing nothing. */
  dryRun: boolean;
  /**
   * Tombstones removed per transaction. Each batch holds the push lock only while it runs and is a
   * purge of its own for the generation (see purgeBatches).
   */
  batchSize: number;
}

/**
 * What a purge did (or would do): the repository's `generation` counts purge batches that removed
 * something, and `purged_through` is the highest version any purged tombstone had. A device whose
 * cursor is above 0 and below it may have missed a deletion it can no longer be told of.
 */
export interface TombstonePurge {
  purged: number;
  generation: number;
  purgedThrough: number;
}

export interface StoredConflict extends Omit<ConflictLog, 'incoming' | 'server'> {
  id: number;
  incoming: string;
  server: string;
}

/** An attachment's latest operation, as stored. */
export interface AttachmentRow {
  attachment_id: string;
  hash: string;
  size: number;
  content_type: string;
  deleted: boolean;
  version: number;
  created_at: string;
  updated_at: string;
}

export type AttachmentPutOutcome =
  | { kind: 'created'; version: number }
  | { kind: 'same'; version: number }
  | { kind: 'conflict'; hash: string };

/** Attachment metadata, versioned from the same counter as records (spec §5). */
export interface AttachmentIndex {
  /** Records an upload unless the id holds different bytes (conflict) or the same bytes (same). */
  putAttachment(a: {
    id: string;
    hash: string;
    size: number;
    contentType: string;
    now: string;
  }): Promise<AttachmentPutOutcome>;
  /** Records a delete; `undefined` when there is no live attachment. `orphaned`: no live attachment uses its blob any more. */
  deleteAttachment(
    id: string,
    now: string,
  ): Promise<{ version: number; hash: string; orphaned: boolean } | undefined>;
  getAttachment(id: string): Promise<AttachmentRow | undefined>;
  /**
   * Up to `limit` attachments (live and deleted) with `after < version <= through`, ascending by
   * version, and the change counter read with them.
   */
  attachmentChanges(
    query: AttachmentChangesQuery,
  ): Promise<{ currentVersion: number; rows: AttachmentRow[] }>;
}

export interface AttachmentChangesQuery {
  after: number;
  /** `Infinity`: no upper bound. */
  through: number;
  limit: number;
}

/** Which records an export covers (spec §7). */
export interface ExportFilter {
  /** `null` = every form type. */
  formTypes: readonly string[] | null;
  /** Only records with a version above this. */
  sinceVersion: number;
  includeDeleted: boolean;
}

/**
 * A record as exports read it: a tuple, not an object, since exports read every record. `deleted`
 * is 0 or 1 and `version` a number on every dialect.
 */
export type ExportRow = [
  observationId: string,
  formType: string,
  formVersion: string | null,
  data: string,
  createdAt: string | null,
  updatedAt: string | null,
  syncedAt: string,
  deleted: 0 | 1,
  version: number,
  geolocation: string | null,
];

export const EXPORT_COLUMNS =
  'observation_id, form_type, form_version, data, created_at, updated_at, synced_at, deleted, version, geolocation';

/** A record's version, form type and data: what an export reads first, to learn its columns. */
export type ExportDataRow = [version: number, formType: string, data: string];

/**
 * Reads records for exports, a page at a time in version order: first every selected record's
 * form type and data (to learn the form types and their columns), then the records of a few form
 * types at a time. Each call visits up to `limit` records with a version above `afterVersion`
 * (fewer when their data reach EXPORT_READ_MAX_BYTES), calling `visit` synchronously for each as it
 * is read, and returns how many it visited: 0 only when there are no more. Every page of one reader sees the records as they were when it was opened, so
 * the columns learnt first fit the records written later.
 */
export interface ExportReader {
  visitExportData(
    filter: ExportFilter,
    afterVersion: number,
    limit: number,
    visit: (row: ExportDataRow) => void,
  ): Promise<number>;
  visitExportRows(
    formTypes: readonly string[],
    filter: ExportFilter,
    afterVersion: number,
    limit: number,
    visit: (row: ExportRow) => void,
  ): Promise<number>;
  /** Ends the reader's snapshot; call it whatever happened. */
  close(): Promise<void>;
}

export interface RecordExportSource {
  openExportReader(): Promise<ExportReader>;
}

/**
 * Where records, the global change counter, remembered transmissions, the conflict log and the
 * devices' sync status live. A push merges its device's status in its own transaction; a replay
 * changes nothing.
 *
 * The counter is one row, incremented inside the push transaction and locked until it commits, so
 * versions are handed out in commit order: once a pull has seen version N, every record with a
 * version ≤ N is already committed. A pull reads its page and the counter from one snapshot.
 * The counter's row also holds the repository's generation and purged_through (TombstonePurge).
 */
export interface SyncStore extends AttachmentIndex, RecordExportSource {
  push(request: PushRequest): Promise<PushOutcome>;
  pull(query: PullQuery): Promise<PullPage>;
  conflicts(afterId: number, limit: number): Promise<StoredConflict[]>;
  /** Merges devices' activity (pulls held in memory) into their status (see activityMergeSql), in the order given. */
  recordActivity(activity: readonly ClientActivity[]): Promise<void>;
  /** Devices with a client_id above `afterClientId` in client_id order, and the counter, from one read. */
  syncClients(
    afterClientId: string,
    limit: number,
  ): Promise<{ currentVersion: number; clients: SyncClientRow[] }>;
  purgeTransmissions(nowMs: number): Promise<number>;
  /** The global change counter as committed: what `/sync/events` tells its listeners. */
  currentVersion(): Promise<number>;
  /** Deletes old tombstones in one transaction that, like a push, holds the counter's lock. */
  purgeTombstones(request: TombstonePurgeRequest): Promise<TombstonePurge>;
  close(): Promise<void>;
}

export const RECORD_COLUMNS = [
  'observation_id',
  'form_type',
  'form_version',
  'data',
  'created_at',
  'updated_at',
  'synced_at',
  'deleted',
  'version',
  'geolocation',
  'hash',
  'last_modified_by',
  'origin_client_id',
] as const;

/** Upsert of one record; `created_at` is kept from the first write. */
export const UPSERT_ASSIGNMENTS = RECORD_COLUMNS.filter((c) => c !== 'observation_id')
  .map((c) =>
    c === 'created_at'
      ? 'created_at = coalesce(observations.created_at, excluded.created_at)'
      : `${c} = excluded.${c}`,
  )
  .join(', ');

/** The conflict log's columns, in the order both stores insert them. */
export const CONFLICT_COLUMNS =
  'observation_id, form_type, policy, base_version, server_version, client_id, username, transmission_id, detected_at, incoming, server';

export function conflictValues(c: ConflictLog): unknown[] {
  return [
    c.observation_id,
    c.form_type,
    c.policy,
    c.base_version,
    c.server_version,
    c.client_id,
    c.username,
    c.transmission_id,
    c.detected_at,
    c.incoming,
    JSON.stringify(c.server),
  ];
}
