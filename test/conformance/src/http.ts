import { readFileSync } from 'node:fs';
import { specPath } from '@synk/contract';
import { parseJson } from '@synk/json';
import { createClient, type SyncClient } from '@synk/sdk';
import { parse } from 'yaml';
import type { Target } from './harness.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests assert response bodies field by field
export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  raw: Response;
}

/**
 * With SYNK_TEST_VIA=sdk, every request a case sends goes through the SDK's typed client
 * (`client.api`, openapi-fetch): the path is matched to its template in openapi.yaml and sent with
 * `params.path`/`params.query`, so the SDK's URL building, serialisers, header merging, auth
 * handling, retry rules, timeouts and response parsing are all exercised by the same cases.
 */
export const VIA_SDK = process.env.SYNK_TEST_VIA === 'sdk';

const sdkClients = new Map<string, SyncClient>();
function sdkClient(baseUrl: string): SyncClient {
  let client = sdkClients.get(baseUrl);
  if (!client) {
    client = createClient({ baseUrl, retry: { baseDelayMs: 5, maxDelayMs: 50 } });
    sdkClients.set(baseUrl, client);
  }
  return client;
}

/** Path templates of the contract that have parameters (templates without any are matched as they are). */
const templates = Object.keys((parse(readFileSync(specPath, 'utf8')) as { paths: object }).paths)
  .filter((template) => template.includes('{'))
  .map((template) => ({
    template,
    pattern: new RegExp(
      `^${template.replace(/\{(\w+)\}/g, (_, name: string) =>
        // A trailing `{path}` spans segments (bundle files live in folders).
        template.endsWith(`{${name}}`) && name === 'path' ? `(?<${name}>.+)` : `(?<${name}>[^/]+)`,
      )}$`,
    ),
  }));

function toTemplate(pathname: string): { template: string; path: Record<string, string> } {
  for (const { template, pattern } of templates) {
    const match = pattern.exec(pathname);
    if (!match?.groups) continue;
    try {
      const path = Object.fromEntries(
        Object.entries(match.groups).map(([name, value]) => [name, decodeURIComponent(value)]),
      );
      return { template, path };
    } catch {
      break; // not decodable: send it as written
    }
  }
  return { template: pathname, path: {} };
}

function toQuery(search: URLSearchParams): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const name of new Set(search.keys())) {
    const values = search.getAll(name);
    query[name] = values.length === 1 ? values[0]! : values;
  }
  return query;
}

type LooseRequest = (
  method: string,
  url: string,
  init: Record<string, unknown>,
) => Promise<{ data?: unknown; error?: unknown; response: Response }>;

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

async function viaSdk(baseUrl: string, pathAndQuery: string, init: RequestInit): Promise<Response> {
  const { method = 'GET', body, headers, ...rest } = init;
  const url = new URL(pathAndQuery, 'http://conformance.invalid');
  const { template, path } = toTemplate(url.pathname);
  const request = sdkClient(baseUrl).api.request as unknown as LooseRequest;
  const { data, error, response } = await request(method, template, {
    ...rest,
    params: { path, query: toQuery(url.searchParams) },
    ...(body === undefined || body === null ? {} : { body, bodySerializer: (b: unknown) => b }),
    headers,
    parseAs: 'stream',
  });
  // openapi-fetch hands back a stream on success and the parsed problem on failure; rebuild the
  // Response so a case reads it the same way in both passes.
  let payload: BodyInit | null = null;
  if (response.ok) payload = (data as ReadableStream<Uint8Array> | undefined) ?? null;
  else if (error !== undefined) payload = typeof error === 'string' ? error : JSON.stringify(error);
  if (method.toUpperCase() === 'HEAD' || NULL_BODY_STATUSES.has(response.status)) payload = null;
  return new Response(payload, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/** `fetch(target.url(pathAndQuery), init)`, or the same request through the SDK (see VIA_SDK). */
export function send(target: Target, pathAndQuery: string, init: RequestInit = {}): Promise<Response> {
  return VIA_SDK ? viaSdk(target.baseUrl, pathAndQuery, init) : fetch(target.url(pathAndQuery), init);
}

/** JSON in and out over `send()`. */
// biome-ignore lint/suspicious/noExplicitAny: tests assert response bodies field by field
export async function call<T = any>(
  target: Target,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] ??= 'application/json';
  const raw = await send(target, path, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  // An event stream (GET /sync/events) never ends: its status and headers are the answer.
  if (/^text\/event-stream/.test(raw.headers.get('content-type') ?? '')) {
    await raw.body?.cancel();
    return { status: raw.status, headers: raw.headers, body: '' as T, raw };
  }
  const text = await raw.text();
  let body: unknown = text;
  if (/json/.test(raw.headers.get('content-type') ?? '') && text) body = parseJson(text);
  return { status: raw.status, headers: raw.headers, body: body as T, raw };
}
export async function login(target: Target, username: string, password: string) {
  const res = await call<{ token: string; refreshToken: string; expiresAt: number }>(
    target,
    'POST',
    '/auth/login',
    {
      body: { username, password },
    },
  );
  if (res.status !== 200)
    throw new Error(`login as ${username} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function adminToken(target: Target): Promise<string> {
  return (await login(target, target.admin.username, target.admin.password)).token;
}

let counter = 0;
/** A fresh, unique username (so cases also work against a shared external server). */
export function uniqueName(prefix = 'user'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

/** Creates a user of the role and logs in as them. */
export async function userWithRole(
  target: Target,
  role: 'read-only' | 'read-write' | 'admin',
  password = 'password-1234',
) {
  const username = uniqueName(role);
  const created = await call(target, 'POST', '/users/create', {
    token: await adminToken(target),
    body: { username, password, role },
  });
  if (created.status !== 201)
    throw new Error(`create ${role} user failed: ${created.status} ${JSON.stringify(created.body)}`);
  return { username, password, ...(await login(target, username, password)) };
}
