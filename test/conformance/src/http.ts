import { createClient } from '@synk/sdk';
import type { Target } from './harness.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests assert response bodies field by field
export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  raw: Response;
}

/**
 * With SYNK_TEST_VIA=sdk, every `call()` goes through the SDK's transport (its auth handling,
 * retry rules and timeouts) instead of plain fetch: the same cases, run through the SDK.
 */
const VIA_SDK = process.env.SYNK_TEST_VIA === 'sdk';
const sdkClients = new Map<string, (request: Request) => Promise<Response>>();
function sdkTransport(baseUrl: string): (request: Request) => Promise<Response> {
  let transport = sdkClients.get(baseUrl);
  if (!transport) {
    transport = createClient({ baseUrl, retry: { baseDelayMs: 5, maxDelayMs: 50 } }).fetch;
    sdkClients.set(baseUrl, transport);
  }
  return transport;
}

/** Raw HTTP with JSON in and out: the "raw" half of each conformance case. */
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
  const request = new Request(target.url(path), {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const raw = await (VIA_SDK ? sdkTransport(target.baseUrl)(request) : fetch(request));
  const text = await raw.text();
  let body: unknown = text;
  if (/json/.test(raw.headers.get('content-type') ?? '') && text) body = JSON.parse(text);
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
