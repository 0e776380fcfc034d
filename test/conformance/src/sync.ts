import { randomUUID } from 'node:crypto';
import type { Target } from './harness.ts';
import { call } from './http.ts';

export interface PushOptions {
  clientId?: string;
  transmissionId?: string;
  headers?: Record<string, string>;
}

export function push(target: Target, token: string, records: unknown[], options: PushOptions = {}) {
  return call(target, 'POST', '/sync/push', {
    token,
    headers: options.headers,
    body: {
      transmission_id: options.transmissionId ?? randomUUID(),
      client_id: options.clientId ?? 'conformance-client',
      records,
    },
  });
}

export function pull(target: Target, token: string, body: Record<string, unknown> = {}, query = '') {
  return call(target, 'POST', `/sync/pull${query}`, {
    token,
    body: { client_id: 'conformance-client', ...body },
  });
}

/** The client loop of spec §4.3: `since.version = change_cutoff` while `has_more`. */
export async function pullAll(
  target: Target,
  token: string,
  since = 0,
  options: { limit?: number; schema_types?: string[] } = {},
) {
  const records: { observation_id: string; version: number; [k: string]: unknown }[] = [];
  let cursor = since;
  let pages = 0;
  for (;;) {
    const res = await pull(
      target,
      token,
      { since: { version: cursor }, ...(options.schema_types ? { schema_types: options.schema_types } : {}) },
      options.limit ? `?limit=${options.limit}` : '',
    );
    if (res.status !== 200) throw new Error(`pull failed: ${res.status} ${JSON.stringify(res.body)}`);
    records.push(...res.body.records);
    cursor = res.body.change_cutoff;
    pages += 1;
    if (!res.body.has_more)
      return { records, cursor, pages, currentVersion: res.body.current_version as number };
  }
}

let sequence = 0;
export function record(overrides: Record<string, unknown> = {}) {
  sequence += 1;
  return {
    observation_id: `obs-${process.pid}-${sequence}`,
    form_type: 'household',
    form_version: '1.0',
    data: { members: sequence, name: `House ${sequence}` },
    created_at: '2026-01-02T03:04:05Z',
    updated_at: '2026-01-02T03:04:05.123+02:00',
    deleted: false,
    ...overrides,
  };
}
