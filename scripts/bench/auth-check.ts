/**
 * What authenticating a request costs: verifying the access token's signature and checking that
 * neither the user nor the session has been revoked. Measured with the revocation cache (the
 * default) and without it (a database lookup of the user and the session on every request).
 * Prints µs per check and the ratio of cached to uncached cost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createContext, createLogger, loadConfig } from '@synk/server';

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
  await ctx.orm.close();
  rmSync(dataDir, { recursive: true, force: true });
  return micros;
}

const uncached = await measure('0');
const cached = await measure('2000');
process.stdout.write(
  `auth check (SQLite file): ${cached.toFixed(1)} µs with the revocation cache, ${uncached.toFixed(1)} µs with a database lookup per request; ratio ${(cached / uncached).toFixed(2)}×\n`,
);
