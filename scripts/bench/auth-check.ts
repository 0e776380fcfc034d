/**
 * What authenticating a request costs: verifying the access token's signature and checking that
 * neither the user nor the session has been revoked. Measured with the revocation cache (the
 * default) and without it (a database lookup of the user and the session on every request).
 * Prints µs per check and the ratio of cached to uncached cost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { closeContext, createContext, createLogger, loadConfig } from '@synk/server';

const CHECKS = 20_000;

async function measure(cacheMs: string): Promise<number> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-bench-'));
  const ctx = await createContext(
    loadConfig({
      DATA_DIR: dataDir,
      DB_CONNECTION: path.join(dataDir, 'bench.db'),
      ADMIN_PASSWORD: 'bench-password',
      REVOCATION_CACHE_MS: cacheMs,
    }),
    createLogger('silent'),
  );
  const { token } = await ctx.services.auth.login('admin', 'bench-password', '127.0.0.1');
  for (let i = 0; i < 500; i++) await ctx.services.auth.authenticate(token);
  const start = performance.now();
  for (let i = 0; i < CHECKS; i++) await ctx.services.auth.authenticate(token);
  const micros = ((performance.now() - start) * 1000) / CHECKS;
  await closeContext(ctx);
  rmSync(dataDir, { recursive: true, force: true });
  return micros;
}

/**
 * Login of an unknown user vs a wrong password for a real one: the median times must be close
 * (the unknown path verifies against a dummy argon2 hash), or response timing would tell which
 * usernames exist.
 */
async function loginTiming(): Promise<{ known: number; unknown: number }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-bench-'));
  const ctx = await createContext(
    loadConfig({
      DATA_DIR: dataDir,
      DB_CONNECTION: ':memory:',
      ADMIN_PASSWORD: 'bench-password',
      LOGIN_MAX_FAILURES_PER_USER: '100000',
      LOGIN_MAX_FAILURES_PER_ADDRESS: '100000',
    }),
    createLogger('silent'),
  );
  const time = async (username: string) => {
    const start = performance.now();
    await ctx.services.auth.login(username, 'wrong-password', '127.0.0.1').catch(() => undefined);
    return performance.now() - start;
  };
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 31; i++) {
    known.push(await time('admin'));
    unknown.push(await time(`ghost-${i}`));
  }
  await closeContext(ctx);
  rmSync(dataDir, { recursive: true, force: true });
  return { known: median(known), unknown: median(unknown) };
}

const timing = await loginTiming();
process.stdout.write(
  `login timing: wrong password ${timing.known.toFixed(1)} ms, unknown user ${timing.unknown.toFixed(1)} ms (median of 31) → ratio ${(timing.unknown / timing.known).toFixed(2)} (goal: close to 1)\n`,
);

const uncached = await measure('0');
const cached = await measure('2000');
process.stdout.write(
  `auth check (SQLite file): ${cached.toFixed(1)} µs with the revocation cache, ${uncached.toFixed(1)} µs with a database lookup per request; the database lookup costs ${(uncached / cached).toFixed(0)}× the cached check\n`,
);
