import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createApp } from '../src/app.ts';
import type { AppContext } from '../src/app-context.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { createContext } from '../src/server.ts';

export interface TestApp {
  app: ReturnType<typeof createApp>;
  ctx: AppContext;
  dataDir: string;
  close(): Promise<void>;
}

export function tempDir(prefix = 'synk-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A fresh app on in-memory SQLite and a temporary data directory; one per test file. */
export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const dataDir = tempDir();
  const config = loadConfig({ DATA_DIR: dataDir, DB_CONNECTION: ':memory:', ...env });
  const ctx = await createContext(config, createLogger('silent'));
  return {
    app: createApp(ctx),
    ctx,
    dataDir,
    async close() {
      await ctx.orm.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
