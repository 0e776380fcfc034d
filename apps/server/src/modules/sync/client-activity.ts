/**
 * Per-device sync status (spec §4.4): what a push or a pull tells about the device that sent it,
 * as one row of `sync_clients` to merge into the stored one. Pushes merge theirs inside their own
 * transaction; pulls are collected in memory and merged in batches (see PendingPulls).
 */
export interface ClientActivity {
  client_id: string;
  username: string;
  /** Unix ms of the push or pull. */
  at: number;
  last_push_at: number | null;
  last_pull_at: number | null;
  highest_pushed_version: number | null;
  change_cutoff: number | null;
  push_count: number;
  records_accepted: number;
}

/** A device's status as stored (times in unix ms): the activity's fields, with first and last seen. */
export type SyncClientRow = Omit<ClientActivity, 'at'> & { first_seen_at: number; last_seen_at: number };

export function pushActivity(
  clientId: string,
  username: string,
  at: number,
  highestVersion: number | null,
  accepted: number,
): ClientActivity {
  return {
    client_id: clientId,
    username,
    at,
    last_push_at: at,
    last_pull_at: null,
    highest_pushed_version: highestVersion,
    change_cutoff: null,
    push_count: 1,
    records_accepted: accepted,
  };
}

export function pullActivity(clientId: string, username: string, at: number, cutoff: number): ClientActivity {
  return {
    client_id: clientId,
    username,
    at,
    last_push_at: null,
    last_pull_at: at,
    highest_pushed_version: null,
    change_cutoff: cutoff,
    push_count: 0,
    records_accepted: 0,
  };
}

/** The insert's columns, in the order of `activityValues`. */
export const ACTIVITY_COLUMNS = [
  'client_id',
  'username',
  'first_seen_at',
  'last_seen_at',
  'last_push_at',
  'last_pull_at',
  'highest_pushed_version',
  'change_cutoff',
  'push_count',
  'records_accepted',
] as const;

export function activityValues(a: ClientActivity): (string | number | null)[] {
  return [
    a.client_id,
    a.username,
    a.at,
    a.at,
    a.last_push_at,
    a.last_pull_at,
    a.highest_pushed_version,
    a.change_cutoff,
    a.push_count,
    a.records_accepted,
  ];
}

/**
 * The merge of an activity into the stored row, for `on conflict (client_id) do update set`.
 * Several processes share one database and flush their pulls late, so an activity may arrive
 * after a newer one: times only move forward, the username and the cutoff are taken only from an
 * activity at least as recent as the stored one, and counts add up. `greatest`/`least` of the
 * dialect skip a null (PostgreSQL's do; SQLite's multi-argument max/min would return it).
 */
export function activityMergeSql(dialect: 'sqlite' | 'postgresql'): string {
  const t = 'sync_clients';
  const greatest = (c: string) =>
    dialect === 'postgresql'
      ? `greatest(${t}.${c}, excluded.${c})`
      : `max(coalesce(${t}.${c}, excluded.${c}), coalesce(excluded.${c}, ${t}.${c}))`;
  const least = (c: string) =>
    dialect === 'postgresql' ? `least(${t}.${c}, excluded.${c})` : `min(${t}.${c}, excluded.${c})`;
  return [
    `username = case when excluded.last_seen_at >= ${t}.last_seen_at then excluded.username else ${t}.username end`,
    `first_seen_at = ${least('first_seen_at')}`,
    `last_seen_at = ${greatest('last_seen_at')}`,
    `last_push_at = ${greatest('last_push_at')}`,
    `last_pull_at = ${greatest('last_pull_at')}`,
    `highest_pushed_version = ${greatest('highest_pushed_version')}`,
    `change_cutoff = case when excluded.last_pull_at is not null and (${t}.last_pull_at is null or excluded.last_pull_at >= ${t}.last_pull_at) then excluded.change_cutoff else ${t}.change_cutoff end`,
    `push_count = ${t}.push_count + excluded.push_count`,
    `records_accepted = ${t}.records_accepted + excluded.records_accepted`,
  ].join(', ');
}
