import { adminToken, type ServerProcess, startServerProcess } from '@synk/test-support/server-process';

/**
 * Starts `apps/server` as production does (its `start` script) and waits until it listens; the
 * server's stderr shows in the benchmark's. `BENCH_NODE_ARGS` adds node flags after the start
 * script's (a later flag wins, e.g. `--max-semi-space-size=0` for V8's default).
 */
export function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const nodeArgs = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [];
  return startServerProcess(env, { nodeArgs, output: 'inherit-stderr' });
}

export const BENCH_PASSWORD = 'bench-password';

/** An access token for the bootstrap admin of a server started with `benchEnv`. */
export function benchToken(url: string): Promise<string> {
  return adminToken(url, BENCH_PASSWORD);
}

/** The environment every benchmark server runs with (on any port, on loopback: the spawner's defaults). */
export function benchEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'production',
    DATA_DIR: dataDir,
    ADMIN_PASSWORD: BENCH_PASSWORD,
    ...extra,
  };
}
