import { readFileSync } from 'node:fs';
import { specPath } from '@synk/contract';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, userWithRole } from '../src/http.ts';

/**
 * Spec §1's role matrix, driven by openapi.yaml: every protected operation is tried anonymously
 * and with each role. Below the operation's minimum role the answer must be 401 (anonymous) or
 * 403, before any input is looked at (bodies here are empty or of the wrong type on purpose);
 * at or above it, the request must get past authorization (any status but 401/403).
 */
const target = useTarget();

type Role = 'read-only' | 'read-write' | 'admin';
const RANK: Record<Role, number> = { 'read-only': 0, 'read-write': 1, admin: 2 };
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete'] as const;
const SAMPLE_PARAMS: Record<string, string> = {
  username: 'no-such-user',
  attachment_id: 'matrix-check.jpg',
  path: 'app%2Findex.html',
  version: '0001',
};

interface Operation {
  method: string;
  path: string;
  operationId: string;
  minRole: Role | undefined;
}

const spec = parse(readFileSync(specPath, 'utf8')) as {
  paths: Record<string, Record<string, { operationId: string; security?: unknown[]; 'x-min-role'?: Role }>>;
};
const operations: Operation[] = Object.entries(spec.paths).flatMap(([path, item]) =>
  METHODS.filter((m) => item[m]).map((method) => {
    const op = item[method]!;
    return {
      method: method.toUpperCase(),
      path: path.replace(/\{(\w+)\}/g, (_, name: string) => SAMPLE_PARAMS[name] ?? 'x'),
      operationId: op.operationId,
      minRole: op.security && op.security.length === 0 ? undefined : (op['x-min-role'] ?? 'read-only'),
    };
  }),
);

/** A body that can never be valid input, so a pass can only come from the authorization layer. */
function probeBody(op: Operation): unknown {
  if (op.method === 'GET' || op.method === 'HEAD' || op.method === 'DELETE') return undefined;
  // Logout without a refresh token would end the caller's sessions; name a session that does not exist.
  if (op.operationId === 'logout') return { refreshToken: 'rt_not-a-session' };
  return { unexpected: true };
}

describe('role matrix (spec §1)', () => {
  const tokens = {} as Record<Role, string>;
  beforeAll(async () => {
    tokens.admin = await adminToken(target);
    tokens['read-write'] = (await userWithRole(target, 'read-write')).token;
    tokens['read-only'] = (await userWithRole(target, 'read-only')).token;
  });

  it('covers every operation of the contract', () => {
    expect(operations.length).toBeGreaterThanOrEqual(30);
    expect(operations.filter((o) => o.minRole === 'admin').length).toBeGreaterThan(5);
  });

  it.each(operations.filter((o) => o.minRole).map((o) => [o.operationId, o] as const))(
    '%s: anonymous → 401, below the minimum role → 403, at or above → authorized',
    async (_id, op) => {
      const anonymous = await call(target, op.method, op.path, { body: probeBody(op) });
      expect(anonymous.status).toBe(401);
      for (const role of ['read-only', 'read-write', 'admin'] as const) {
        const res = await call(target, op.method, op.path, { token: tokens[role], body: probeBody(op) });
        if (RANK[role] < RANK[op.minRole!]) {
          expect({ role, status: res.status }).toEqual({ role, status: 403 });
          if (op.method !== 'HEAD') expect((res.body as { code: string }).code).toBe('forbidden');
        } else {
          expect([401, 403], `${role} was refused ${op.operationId}`).not.toContain(res.status);
        }
      }
    },
  );

  it.each(operations.filter((o) => !o.minRole).map((o) => [o.operationId, o] as const))(
    '%s is public',
    async (_id, op) => {
      const res = await call(target, op.method, op.path, { body: probeBody(op) });
      expect([401, 403]).not.toContain(res.status);
    },
  );

  it('401 problems carry a Bearer challenge', async () => {
    const res = await call(target, 'GET', '/users');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(res.body).toMatchObject({ status: 401, code: 'unauthorized' });
  });
});
