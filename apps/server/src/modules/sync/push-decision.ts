import type { components } from '@synk/contract';
import { parseJsonExact } from '@synk/json';
import type { IncomingRecord } from './records.ts';
import {
  type ConflictLog,
  observationJson,
  type PushRequest,
  type RecordWrite,
  type StoredRecord,
} from './sync.store.ts';

type Schemas = components['schemas'];
export type PushResponse = Schemas['SyncPushResponse'];
export type Observation = Schemas['Observation'];

export function toObservation(r: StoredRecord): Observation {
  return parseJsonExact(observationJson(r)) as Observation;
}

/** An incoming record as a PushObservation's JSON text (nulls left out), its data spliced in unparsed. */
function pushObservationJson(r: IncomingRecord): string {
  const { dataJson, ...fields } = r;
  const present = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null));
  return `{"data":${dataJson},${JSON.stringify(present).slice(1)}`;
}

/** What a push decides once it can see the stored versions of the records it carries. */
export interface PushDecision {
  writes: RecordWrite[];
  conflicts: ConflictLog[];
  /** How many records the push took (written, or identical to the stored copy): the device status counts them. */
  accepted: number;
  /** Builds the response once versions are allocated (`versions[i]` belongs to `writes[i]`). */
  respond(currentVersion: number): PushResponse;
}

/** The ids whose stored copies a push's decision needs. */
export const pushedIds = (request: PushRequest): string[] =>
  request.winners.map((w) => w.record.observation_id);

/**
 * Decides a push inside its transaction, from the stored copies of its records that exist (spec
 * §4.2): an identical record takes no version; one whose `base_version` is not the stored version
 * is a conflict, logged and then refused or written by the conflict policy; the rest are written.
 * A function of plain data, so that it can run wherever the transaction runs (a worker thread on
 * SQLite files, see sqlite-push.ts).
 */
export function decidePush(request: PushRequest, existing: Map<string, StoredRecord>): PushDecision {
  const { policy, clientId, username, transmissionId } = request;
  const nowIso = new Date(request.nowMs).toISOString();
  const writes: RecordWrite[] = [];
  const conflicts: ConflictLog[] = [];
  const decidedFailed: Schemas['FailedRecord'][] = [];
  const decidedWarnings: Schemas['SyncWarning'][] = [];
  for (const { index, record } of request.winners) {
    const stored = existing.get(record.observation_id);
    if (stored && stored.hash === record.hash) continue; // identical: success, no new version
    const conflicting =
      stored !== undefined && record.base_version !== null && stored.version !== record.base_version;
    if (conflicting) {
      conflicts.push({
        observation_id: record.observation_id,
        form_type: record.form_type,
        policy,
        base_version: record.base_version!,
        server_version: stored.version,
        client_id: clientId,
        username,
        transmission_id: transmissionId,
        detected_at: nowIso,
        incoming: pushObservationJson(record),
        server: stored,
      });
      const message = `The record changed on the server since version ${record.base_version} (now ${stored.version})`;
      if (policy === 'reject') {
        decidedFailed.push({
          index,
          observation_id: record.observation_id,
          code: 'conflict',
          error: message,
          server_version: stored.version,
          server_record: toObservation(stored),
        });
        continue;
      }
      decidedWarnings.push({
        id: record.observation_id,
        code: 'CONFLICT',
        message,
        server_version: stored.version,
      });
    }
    writes.push({
      observation_id: record.observation_id,
      form_type: record.form_type,
      form_version: record.form_version,
      data: record.dataJson,
      created_at: stored?.created_at ?? record.created_at,
      updated_at: record.updated_at,
      synced_at: nowIso,
      deleted: record.deleted,
      geolocation: record.geolocation ? JSON.stringify(record.geolocation) : null,
      hash: record.hash,
      last_modified_by: username,
      origin_client_id: clientId,
    });
  }
  // The response's success_count, and what the device status counts as accepted.
  const succeeded = request.checkedCount - decidedFailed.length;
  return {
    writes,
    accepted: succeeded,
    conflicts,
    respond: (currentVersion) => ({
      current_version: currentVersion,
      success_count: succeeded,
      failed_records: [...request.failed, ...decidedFailed].sort((a, b) => a.index - b.index),
      warnings: [...request.warnings, ...decidedWarnings],
      server_time: nowIso,
    }),
  };
}
