import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { PUBLISHED_JWT_SECRETS } from './lib/published-secrets.ts';
import { isNewUsername, USERNAME_RULE } from './lib/username.ts';

/**
 * The only reader of the environment. Every setting is parsed, range-checked and frozen here, and a
 * bad value stops the server at start with a message that names the variable.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type ValidationMode = 'off' | 'warn' | 'reject';
export type ConflictPolicy = 'last-write-wins' | 'reject';

export type DatabaseConfig =
  | { kind: 'sqlite'; file: string }
  | { kind: 'postgresql'; url: string; connectTimeoutMs: number; migrateOnStart: boolean };

export interface Config {
  readonly port: number;
  readonly host: string | undefined;
  readonly dataDir: string;
  readonly database: DatabaseConfig;
  readonly jwtSecret: string | undefined;
  readonly logLevel: LogLevel;
  readonly appBundlePath: string;
  readonly maxVersionsKept: number;
  readonly adminUsername: string;
  readonly adminPassword: string | undefined;
  readonly publicUrl: string | undefined;
  readonly corsOrigins: readonly string[];
  /** Validate responses against openapi.yaml (on in tests and development, off in production). */
  readonly validateResponses: boolean;
  readonly limits: {
    readonly jsonBodyBytes: number;
    readonly syncMaxRecords: number;
    readonly attachmentBytes: number;
    readonly bundleZipBytes: number;
    readonly bundleEntries: number;
    readonly bundleUncompressedBytes: number;
    readonly healthMinFreeBytes: number;
    /** Exports running at once (each holds a database read transaction, or a pooled connection, until it ends). */
    readonly concurrentExports: number;
    /** How long an export waits for a client that has stopped reading before giving up on it. */
    readonly exportStallMs: number;
    /** Data columns per form type in an export; the other keys go into one JSON column. */
    readonly exportMaxColumns: number;
  };
  readonly sync: {
    readonly validation: ValidationMode;
    readonly conflictPolicy: ConflictPolicy;
    readonly idempotencyTtlSeconds: number;
    /** How often each process writes the devices' pull status it holds in memory. */
    readonly clientStatusFlushMs: number;
    /** `GET /sync/events`: the comment sent to keep idle streams open through proxies, and when tokens are checked again. */
    readonly eventsHeartbeatMs: number;
    /** `GET /sync/events`: how often a process with listeners reads the counter (other processes' writes). */
    readonly eventsPollMs: number;
    /** `GET /sync/events`: open streams per process; more are refused with 503. */
    readonly eventsMaxStreams: number;
    /** Tombstones a purge removes per transaction: pushes wait for one batch, never for the whole purge. */
    readonly tombstonePurgeBatch: number;
  };
  readonly auth: {
    readonly accessTokenTtlSeconds: number;
    readonly refreshTokenTtlSeconds: number;
    /** The longest a session lives however often it is refreshed (each refresh extends it by the refresh token lifetime). */
    readonly sessionMaxLifetimeSeconds: number;
    /**
     * How long after a refresh token's exchange the same exchange sent again without an
     * Idempotency-Key (a retry, a concurrent request) is answered with the same new refresh token
     * instead of being taken for reuse; 0 = never.
     */
    readonly refreshReuseGraceSeconds: number;
    readonly passwordMinLength: number;
    readonly passwordMaxLength: number;
    /** How long a process may trust its cached view of a user's or session's revocation state. */
    readonly revocationCacheMs: number;
    readonly loginMaxFailuresPerUser: number;
    readonly loginMaxFailuresPerUserTotal: number;
    readonly loginMaxFailuresPerAddress: number;
    readonly loginThrottleWindowSeconds: number;
  };
  /** Express `trust proxy`: false, true, a hop count, or a comma-separated list of trusted addresses. */
  readonly trustProxy: boolean | number | string;
  readonly shutdownTimeoutMs: number;
  /** Set by the build or deployment; main.ts falls back to the git checkout when they are absent. */
  readonly build: { readonly commit: string | undefined; readonly time: string | undefined };
}

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const MiB = 1024 * 1024;

/** Reads `.env` from `cwd` (if present) under the real environment, which wins. */
export function environmentWithDotEnv(env: Env, cwd: string): Env {
  const file = path.join(cwd, '.env');
  if (!existsSync(file)) return env;
  return { ...parseEnv(readFileSync(file, 'utf8')), ...env };
}

export function loadConfig(env: Env, cwd = process.cwd()): Config {
  const problems: string[] = [];
  const read = new EnvReader(env, problems);

  const dataDir = path.resolve(cwd, read.string('DATA_DIR', './data'));
  const database = parseDatabase(read, dataDir, cwd);
  const jwtSecret = read.optionalSecret('JWT_SECRET');
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < 32) {
    problems.push('JWT_SECRET: must be at least 32 bytes long (unset it to use a generated secret)');
  } else if (jwtSecret !== undefined && PUBLISHED_JWT_SECRETS.has(jwtSecret.trim())) {
    problems.push(
      'JWT_SECRET: is the example value published with this project; set a random one (openssl rand -hex 32) or unset it to use a generated secret',
    );
  }
  const passwordMinLength = read.int('PASSWORD_MIN_LENGTH', 8, 1, 1024);
  const passwordMaxLength = read.int('PASSWORD_MAX_LENGTH', 1024, 1, 4096);
  if (passwordMinLength > passwordMaxLength) {
    problems.push('PASSWORD_MIN_LENGTH: must not exceed PASSWORD_MAX_LENGTH');
  }
  const nodeEnv = env.NODE_ENV ?? 'development';

  const config: Config = {
    port: read.int('PORT', 8080, 0, 65535),
    host: read.optionalString('HOST'),
    dataDir,
    database,
    jwtSecret,
    logLevel: read.oneOf('LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const, 'info'),
    appBundlePath: path.resolve(cwd, read.string('APP_BUNDLE_PATH', path.join(dataDir, 'app-bundles'))),
    maxVersionsKept: read.int('MAX_VERSIONS_KEPT', 5, 1, 10_000),
    adminUsername: read.username('ADMIN_USERNAME', 'admin'),
    adminPassword: read.optionalSecret('ADMIN_PASSWORD'),
    publicUrl: read.url('PUBLIC_URL'),
    corsOrigins: read.list('CORS_ORIGINS'),
    validateResponses: read.bool('VALIDATE_RESPONSES', nodeEnv !== 'production'),
    limits: {
      jsonBodyBytes: read.int('MAX_JSON_BODY_BYTES', 16 * MiB, 1024, 1024 * MiB),
      syncMaxRecords: read.int('SYNC_MAX_RECORDS', 1000, 1, 100_000),
      attachmentBytes: read.int('ATTACHMENT_MAX_BYTES', 100 * MiB, 1, Number.MAX_SAFE_INTEGER),
      bundleZipBytes: read.int('BUNDLE_MAX_ZIP_BYTES', 50 * MiB, 1, Number.MAX_SAFE_INTEGER),
      bundleEntries: read.int('BUNDLE_MAX_ENTRIES', 5000, 1, 1_000_000),
      bundleUncompressedBytes: read.int(
        'BUNDLE_MAX_UNCOMPRESSED_BYTES',
        500 * MiB,
        1,
        Number.MAX_SAFE_INTEGER,
      ),
      healthMinFreeBytes: read.int('HEALTH_MIN_FREE_BYTES', 64 * MiB, 0, Number.MAX_SAFE_INTEGER),
      concurrentExports: read.int('EXPORT_MAX_CONCURRENT', 2, 1, 64),
      exportStallMs: read.int('EXPORT_STALL_TIMEOUT_MS', 60_000, 100, 3_600_000),
      exportMaxColumns: read.int('EXPORT_MAX_COLUMNS', 2000, 1, 100_000),
    },
    sync: {
      validation: read.oneOf('SYNC_VALIDATION', ['off', 'warn', 'reject'] as const, 'warn'),
      conflictPolicy: read.oneOf(
        'CONFLICT_POLICY',
        ['last-write-wins', 'reject'] as const,
        'last-write-wins',
      ),
      // Longer than a field device stays offline: a batch whose answer was lost is re-sent when
      // the device is back, and past this it would be applied again, over newer changes.
      idempotencyTtlSeconds: read.duration('IDEMPOTENCY_TTL', 30 * 24 * 3600),
      clientStatusFlushMs: read.int('SYNC_CLIENT_STATUS_FLUSH_MS', 5000, 100, 600_000),
      eventsHeartbeatMs: read.int('SYNC_EVENTS_HEARTBEAT_MS', 25_000, 10, 3_600_000),
      eventsPollMs: read.int('SYNC_EVENTS_POLL_MS', 1000, 10, 600_000),
      eventsMaxStreams: read.int('SYNC_EVENTS_MAX_STREAMS', 1000, 0, 1_000_000),
      tombstonePurgeBatch: read.int('TOMBSTONE_PURGE_BATCH', 5000, 1, 1_000_000),
    },
    auth: {
      accessTokenTtlSeconds: read.duration('ACCESS_TOKEN_TTL', 24 * 3600),
      refreshTokenTtlSeconds: read.duration('REFRESH_TOKEN_TTL', 30 * 24 * 3600),
      sessionMaxLifetimeSeconds: read.duration('SESSION_MAX_LIFETIME', 365 * 24 * 3600),
      refreshReuseGraceSeconds: read.duration('REFRESH_REUSE_GRACE', 0, { zero: true, maxSeconds: 300 }),
      passwordMinLength,
      passwordMaxLength,
      revocationCacheMs: read.int('REVOCATION_CACHE_MS', 2000, 0, 60_000),
      loginMaxFailuresPerUser: read.int('LOGIN_MAX_FAILURES_PER_USER', 10, 1, 1_000_000),
      loginMaxFailuresPerUserTotal: read.int('LOGIN_MAX_FAILURES_PER_USER_TOTAL', 100, 1, 1_000_000),
      loginMaxFailuresPerAddress: read.int('LOGIN_MAX_FAILURES_PER_ADDRESS', 100, 1, 1_000_000),
      loginThrottleWindowSeconds: read.duration('LOGIN_THROTTLE_WINDOW', 15 * 60),
    },
    trustProxy: read.trustProxy('TRUST_PROXY'),
    shutdownTimeoutMs: read.int('SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    build: { commit: read.optionalString('BUILD_COMMIT'), time: read.optionalString('BUILD_TIME') },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

function parseDatabase(read: EnvReader, dataDir: string, cwd: string): DatabaseConfig {
  const raw = read.optionalString('DB_CONNECTION');
  const migrateOnStart = read.bool('MIGRATE_ON_START', true);
  if (raw === undefined) return { kind: 'sqlite', file: path.join(dataDir, 'synkronus.db') };
  if (/^postgres(ql)?:\/\//i.test(raw)) {
    if (!URL.canParse(raw) || new URL(raw).hostname === '') {
      read.problem('DB_CONNECTION', 'is not a valid postgres://user:password@host:port/database URL');
    }
    const connectTimeoutMs = read.duration('DB_CONNECT_TIMEOUT', 10) * 1000;
    return { kind: 'postgresql', url: raw, connectTimeoutMs, migrateOnStart };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    read.problem('DB_CONNECTION', 'must be a postgres:// URL or a SQLite file path');
  }
  const file = raw.replace(/^(sqlite|file):/i, '');
  return { kind: 'sqlite', file: file === ':memory:' ? file : path.resolve(cwd, file) };
}

/** Parses one variable at a time; records a problem (and returns the default) instead of throwing. */
class EnvReader {
  readonly #env: Env;
  readonly #problems: string[];
  constructor(env: Env, problems: string[]) {
    this.#env = env;
    this.#problems = problems;
  }

  problem(name: string, message: string): void {
    this.#problems.push(`${name}: ${message}`);
  }

  optionalString(name: string): string | undefined {
    const value = this.#env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  /** A secret, exactly as given (spaces at its ends are part of it); blank means unset. */
  optionalSecret(name: string): string | undefined {
    const value = this.#env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  }

  string(name: string, fallback: string): string {
    return this.optionalString(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.optionalString(name);
    if (raw === undefined) return fallback;
    const value = /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      this.problem(name, `must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
      return fallback;
    }
    return value;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.optionalString(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    this.problem(name, `must be true or false (got ${JSON.stringify(raw)})`);
    return fallback;
  }

  oneOf<const T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.optionalString(name);
    if (raw === undefined) return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    this.problem(name, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(raw)})`);
    return fallback;
  }

  /** Seconds, or a number with a unit: `90s`, `15m`, `24h`, `30d`. */
  /** A duration in seconds; `zero` also takes 0 (the thing it times is off), `maxSeconds` caps it. */
  duration(
    name: string,
    fallbackSeconds: number,
    { zero = false, maxSeconds = Number.MAX_SAFE_INTEGER }: { zero?: boolean; maxSeconds?: number } = {},
  ): number {
    const raw = this.optionalString(name);
    if (raw === undefined) return fallbackSeconds;
    const match = /^(\d+)\s*(s|m|h|d)?$/.exec(raw);
    const factor = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
    const seconds = match ? Number(match[1]) * factor[(match[2] ?? 's') as keyof typeof factor] : -1;
    if (!match || seconds < (zero ? 0 : 1) || !Number.isSafeInteger(seconds) || seconds > maxSeconds) {
      const kind = zero ? 'a duration (0 for none)' : 'a positive duration';
      const range =
        maxSeconds < Number.MAX_SAFE_INTEGER
          ? `of at most ${maxSeconds} seconds`
          : 'such as 900, 15m, 24h or 30d';
      this.problem(name, `must be ${kind} ${range} (got ${JSON.stringify(raw)})`);
      return fallbackSeconds;
    }
    return seconds;
  }

  username(name: string, fallback: string): string {
    const value = this.string(name, fallback);
    if (!isNewUsername(value)) {
      this.problem(name, USERNAME_RULE);
      return fallback;
    }
    return value;
  }

  url(name: string): string | undefined {
    const raw = this.optionalString(name);
    if (raw === undefined) return undefined;
    try {
      const url = new URL(raw);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
      // A base for absolute URLs (`<PUBLIC_URL>/attachments/<id>`): a query or fragment would
      // swallow the path appended to it, and credentials would be handed to every client.
      if (/[?#]/.test(raw) || url.username !== '' || url.password !== '') throw new Error('not a base');
      return raw.replace(/\/+$/, '');
    } catch {
      this.problem(
        name,
        // Credentials in it are not repeated into the log.
        `must be an absolute http(s) URL without query, fragment or credentials (got ${JSON.stringify(raw.replace(/\/\/[^/]*@/, '//…@'))})`,
      );
      return undefined;
    }
  }

  trustProxy(name: string): boolean | number | string {
    const raw = this.optionalString(name);
    if (raw === undefined || raw === 'false') return false;
    if (raw === 'true') return true;
    if (/^\d+$/.test(raw)) return Number(raw);
    // Checked entry by entry as Express will read them: a value it cannot (`yes`, `10.0.0.0/99`)
    // passed here and stopped the server later with `TypeError: invalid IP address: yes`.
    const entries = raw.split(',').map((entry) => entry.trim());
    if (!entries.every(isTrustedProxyEntry)) {
      this.problem(
        name,
        `must be true, false, a hop count or a comma-separated list of addresses, address/prefix ranges, loopback, linklocal or uniquelocal (got ${JSON.stringify(raw)})`,
      );
      return false;
    }
    return raw;
  }

  list(name: string): string[] {
    const raw = this.optionalString(name);
    if (raw === undefined) return [];
    const items = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const item of items) {
      if (item !== '*' && !/^https?:\/\/[^/\s]+$/.test(item)) {
        this.problem(
          name,
          `entries must be origins like https://app.example.org or * (got ${JSON.stringify(item)})`,
        );
      }
    }
    return items;
  }
}

/** One entry of an Express `trust proxy` list: a named range, an address, address/prefix or IPv4 address/netmask. */
function isTrustedProxyEntry(entry: string): boolean {
  if (entry === 'loopback' || entry === 'linklocal' || entry === 'uniquelocal') return true;
  const [address = '', range, ...rest] = entry.split('/');
  const kind = isIP(address);
  if (kind === 0 || rest.length > 0) return false;
  if (range === undefined) return true;
  if (/^\d+$/.test(range)) return Number(range) >= 1 && Number(range) <= (kind === 4 ? 32 : 128);
  if (kind !== 4 || isIP(range) !== 4) return false;
  // A netmask: ones then zeros, not all zeros.
  const mask = range.split('.').reduce((bits, octet) => bits * 256 + Number(octet), 0);
  const hostBits = 2 ** 32 - 1 - mask;
  return mask > 0 && (hostBits & (hostBits + 1)) === 0;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
