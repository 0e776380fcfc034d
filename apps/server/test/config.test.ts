import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, environmentWithDotEnv, loadConfig } from '../src/config.ts';
import { tempDir } from './helpers.ts';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env, '/srv');
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('loadConfig', () => {
  it('has safe zero-config defaults: SQLite under ./data, port 8080', () => {
    const config = loadConfig({}, '/srv');
    expect(config.port).toBe(8080);
    expect(config.dataDir).toBe('/srv/data');
    expect(config.database).toEqual({ kind: 'sqlite', file: '/srv/data/synkronus.db' });
    expect(config.maxVersionsKept).toBe(5);
    expect(config.adminUsername).toBe('admin');
    expect(config.jwtSecret).toBeUndefined();
    expect(config.sync).toEqual({
      validation: 'warn',
      conflictPolicy: 'last-write-wins',
      idempotencyTtlSeconds: 30 * 86_400,
      clientStatusFlushMs: 5000,
      eventsHeartbeatMs: 25_000,
      eventsPollMs: 1000,
      eventsMaxStreams: 1000,
      tombstonePurgeBatch: 5000,
    });
    expect(config.auth.accessTokenTtlSeconds).toBe(86_400);
    expect(config.auth.refreshTokenTtlSeconds).toBe(30 * 86_400);
    // Strict rotation by default (spec §3): the grace period is an opt-in extension.
    expect(config.auth.refreshReuseGraceSeconds).toBe(0);
    expect(config.limits.syncMaxRecords).toBe(1000);
    expect(config.limits.jsonBodyBytes).toBe(16 * 1024 * 1024);
    expect(Object.isFrozen(config.limits)).toBe(true);
  });

  it('selects PostgreSQL for a postgres:// URL and SQLite for a path', () => {
    expect(loadConfig({ DB_CONNECTION: 'postgres://u:p@localhost:5432/synk' }, '/srv').database).toEqual({
      kind: 'postgresql',
      url: 'postgres://u:p@localhost:5432/synk',
      connectTimeoutMs: 10_000,
      migrateOnStart: true,
    });
    expect(
      loadConfig(
        { DB_CONNECTION: 'postgresql://localhost/x', MIGRATE_ON_START: 'false', DB_CONNECT_TIMEOUT: '3s' },
        '/srv',
      ).database,
    ).toMatchObject({
      kind: 'postgresql',
      connectTimeoutMs: 3000,
      migrateOnStart: false,
    });
    expect(loadConfig({ DB_CONNECTION: 'db/app.sqlite' }, '/srv').database).toEqual({
      kind: 'sqlite',
      file: '/srv/db/app.sqlite',
    });
    expect(loadConfig({ DB_CONNECTION: ':memory:' }, '/srv').database).toEqual({
      kind: 'sqlite',
      file: ':memory:',
    });
  });

  it('parses durations, booleans and lists', () => {
    const config = loadConfig(
      {
        ACCESS_TOKEN_TTL: '15m',
        REFRESH_TOKEN_TTL: '7d',
        IDEMPOTENCY_TTL: '3600',
        VALIDATE_RESPONSES: 'no',
        CORS_ORIGINS: 'https://a.example, http://localhost:3000',
      },
      '/srv',
    );
    expect(config.auth.accessTokenTtlSeconds).toBe(900);
    expect(config.auth.refreshTokenTtlSeconds).toBe(7 * 86_400);
    expect(config.sync.idempotencyTtlSeconds).toBe(3600);
    expect(config.validateResponses).toBe(false);
    expect(config.corsOrigins).toEqual(['https://a.example', 'http://localhost:3000']);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['MAX_VERSIONS_KEPT', '0'],
    ['LOG_LEVEL', 'verbose'],
    ['SYNC_VALIDATION', 'strict'],
    ['CONFLICT_POLICY', 'first-write-wins'],
    ['JWT_SECRET', 'short'],
    // The example deploy/compose.yaml once shipped: no secret.
    ['JWT_SECRET', 'change-me-to-a-long-random-secret-of-32-bytes-or-more'],
    ['DB_CONNECTION', 'mysql://localhost/db'],
    ['DB_CONNECTION', 'postgres://'],
    ['PUBLIC_URL', 'not a url'],
    ['PUBLIC_URL', 'ftp://files.example'],
    // Download URLs are PUBLIC_URL + /attachments/<id>: a query or fragment would swallow the path.
    ['PUBLIC_URL', 'https://files.example/base?x=1'],
    ['PUBLIC_URL', 'https://files.example/#top'],
    ['PUBLIC_URL', 'https://user:secret@files.example'],
    ['ACCESS_TOKEN_TTL', '0'],
    ['ACCESS_TOKEN_TTL', '1 week'],
    ['REFRESH_REUSE_GRACE', '6m'],
    ['REFRESH_REUSE_GRACE', '-1'],
    ['VALIDATE_RESPONSES', 'maybe'],
    ['ADMIN_USERNAME', 'bad name!'],
    ['ADMIN_USERNAME', '..'],
    ['CORS_ORIGINS', 'javascript:alert(1)'],
    ['SYNC_MAX_RECORDS', '1e3'],
    // Express could not read these either: the server stopped later, without naming the variable.
    ['TRUST_PROXY', 'yes'],
    ['TRUST_PROXY', '10.0.0.0/99'],
    ['TRUST_PROXY', 'loopback, proxy.internal'],
    ['TRUST_PROXY', '10.0.0.0/255.0.255.0'],
  ])('rejects %s=%j with a message naming the variable', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}: `));
  });

  it('takes REFRESH_REUSE_GRACE of 0 (strict rotation) up to five minutes', () => {
    expect(loadConfig({ REFRESH_REUSE_GRACE: '0' }, '/srv').auth.refreshReuseGraceSeconds).toBe(0);
    expect(loadConfig({ REFRESH_REUSE_GRACE: '5m' }, '/srv').auth.refreshReuseGraceSeconds).toBe(300);
    // Other durations still refuse 0.
    expect(problemsOf({ REFRESH_TOKEN_TTL: '0' })).toEqual([expect.stringMatching(/^REFRESH_TOKEN_TTL: /)]);
  });

  it('does not repeat the credentials of a PUBLIC_URL it rejects', () => {
    const [problem] = problemsOf({ PUBLIC_URL: 'https://user:secret@files.example' });
    expect(problem).toMatch(/^PUBLIC_URL: /);
    expect(problem).not.toContain('secret');
  });

  it('takes PUBLIC_URL with a path as the base of absolute URLs, without its trailing slashes', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://files.example/sync/' }, '/srv').publicUrl).toBe(
      'https://files.example/sync',
    );
  });

  it.each([
    ['true', true],
    ['2', 2],
    ['loopback', 'loopback'],
    ['10.0.0.0/8, 192.168.1.1', '10.0.0.0/8, 192.168.1.1'],
    ['loopback,fd00::/8,::1', 'loopback,fd00::/8,::1'],
    ['172.16.0.0/255.240.0.0', '172.16.0.0/255.240.0.0'],
  ])('takes TRUST_PROXY=%j as Express reads it', (raw, expected) => {
    const { trustProxy } = loadConfig({ TRUST_PROXY: raw }, '/srv');
    expect(trustProxy).toEqual(expected);
    expect(() => express().set('trust proxy', trustProxy)).not.toThrow();
  });

  it('reports every bad variable at once', () => {
    const problems = problemsOf({ PORT: 'x', LOG_LEVEL: 'loud', JWT_SECRET: 'abc' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['JWT_SECRET', 'LOG_LEVEL', 'PORT']);
  });

  it('reads the change-event stream settings, naming a bad one', () => {
    const config = loadConfig({
      SYNC_EVENTS_HEARTBEAT_MS: '500',
      SYNC_EVENTS_POLL_MS: '50',
      SYNC_EVENTS_MAX_STREAMS: '0',
    });
    expect(config.sync).toMatchObject({ eventsHeartbeatMs: 500, eventsPollMs: 50, eventsMaxStreams: 0 });
    for (const name of ['SYNC_EVENTS_HEARTBEAT_MS', 'SYNC_EVENTS_POLL_MS', 'SYNC_EVENTS_MAX_STREAMS'])
      expect(() => loadConfig({ [name]: '-1' })).toThrow(name);
  });

  it('reads the tombstone purge batch, which removes at least one tombstone', () => {
    expect(loadConfig({ TOMBSTONE_PURGE_BATCH: '1' }).sync.tombstonePurgeBatch).toBe(1);
    for (const value of ['0', '-5', 'many'])
      expect(() => loadConfig({ TOMBSTONE_PURGE_BATCH: value })).toThrow('TOMBSTONE_PURGE_BATCH');
  });

  it('accepts a 32-byte JWT secret and treats blank values as unset', () => {
    expect(loadConfig({ JWT_SECRET: 'x'.repeat(32) }, '/srv').jwtSecret).toHaveLength(32);
    expect(loadConfig({ PORT: '  ', JWT_SECRET: '' }, '/srv').port).toBe(8080);
  });

  it('keeps secrets exactly as given (spaces at the ends are part of a password)', () => {
    const config = loadConfig(
      { ADMIN_PASSWORD: '  spaced pass  ', JWT_SECRET: ` ${'s'.repeat(32)} ` },
      '/srv',
    );
    expect(config.adminPassword).toBe('  spaced pass  ');
    expect(config.jwtSecret).toBe(` ${'s'.repeat(32)} `);
    expect(loadConfig({ ADMIN_PASSWORD: '   ' }, '/srv').adminPassword).toBeUndefined();
  });
});

describe('environmentWithDotEnv', () => {
  it('reads .env from the working directory, with the real environment winning', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, '.env'), 'PORT=9090\nLOG_LEVEL=debug\n# comment\nADMIN_USERNAME="root"\n');
    const env = environmentWithDotEnv({ LOG_LEVEL: 'warn' }, dir);
    const config = loadConfig(env, dir);
    expect(config.port).toBe(9090);
    expect(config.logLevel).toBe('warn');
    expect(config.adminUsername).toBe('root');
  });

  it('is a no-op without a .env file', () => {
    const env = { PORT: '1' };
    expect(environmentWithDotEnv(env, tempDir())).toBe(env);
  });
});

describe('the example deployment (deploy/compose.yaml)', () => {
  it('is a valid configuration that publishes no secret: the signing key is generated, the admin password comes from outside', () => {
    const compose = parse(readFileSync(new URL('../../../deploy/compose.yaml', import.meta.url), 'utf8')) as {
      services: Record<string, { environment?: Record<string, string> }>;
    };
    const servers = Object.values(compose.services).filter((s) => s.environment?.DB_CONNECTION);
    expect(servers.length).toBeGreaterThan(0);
    for (const { environment } of servers) {
      // Compose's ${NAME:-default}, for someone who set nothing in their environment.
      const env = Object.fromEntries(
        Object.entries(environment!).map(([name, value]) => [
          name,
          String(value).replace(
            /\$\{\w+(?::?-([^}]*))?\}/g,
            (_, fallback: string | undefined) => fallback ?? '',
          ),
        ]),
      );
      const config = loadConfig(env, '/srv');
      expect(config.jwtSecret).toBeUndefined();
      expect(config.adminPassword).toBeUndefined();
    }
  });
});
