import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER_DIR = fileURLToPath(new URL('../../apps/server/', import.meta.url));

/**
 * The environment assignments and node arguments of `apps/server`'s `start` script (its V8 flags
 * and the compiled entry point), so benchmarks measure what production runs. `BENCH_NODE_ARGS`
 * adds flags after them (a later flag wins, e.g. `--max-semi-space-size=0` for V8's default).
 */
function startCommand(): { env: Record<string, string>; args: string[] } {
  const { scripts } = JSON.parse(readFileSync(path.join(SERVER_DIR, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const words = scripts.start.trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (/^[A-Z][A-Z0-9_]*=/.test(words[0]!)) {
    const [name, value] = words.shift()!.split('=') as [string, string];
    env[name] = value;
  }
  const [, ...args] = words;
  const main = path.join(SERVER_DIR, args.pop()!);
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  const extra = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [];
  return { env, args: [...args, ...extra, main] };
}

/** Starts `apps/server` in a child process (as `npm start` does) and waits until it listens. */
export async function spawnServer(
  env: Record<string, string>,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const start = startCommand();
  const child = spawn(process.execPath, start.args, {
    env: { PATH: process.env.PATH ?? '', ...start.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // A benchmark that fails part-way exits without stopping its server: never leave one behind.
  const orphaned = () => child.kill('SIGKILL');
  process.once('exit', orphaned);
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
      if (match) resolve(match[1]!.replace('localhost', '127.0.0.1'));
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
  return {
    url,
    pid: child.pid!,
    async stop() {
      process.off('exit', orphaned);
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

export const BENCH_PASSWORD = 'bench-password';

/** The environment every benchmark server runs with: production mode, any port, loopback only. */
export function benchEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    ADMIN_PASSWORD: BENCH_PASSWORD,
    LOG_LEVEL: 'info',
    ...extra,
  };
}

/** An access token for the bootstrap admin. */
export async function adminToken(url: string): Promise<string> {
  const res = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: BENCH_PASSWORD }),
  });
  return ((await res.json()) as { token: string }).token;
}
