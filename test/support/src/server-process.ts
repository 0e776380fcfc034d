import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The real server in a child process, started the way production starts it: the `start` script of
 * `apps/server` (its environment assignments, its node flags, the compiled `dist/main.js`), so tests
 * and benchmarks exercise the shipped build rather than the TypeScript sources.
 */
export interface ServerProcess {
  /** Base URL, on 127.0.0.1 (the server logs `localhost`, which may resolve to ::1 first). */
  url: string;
  pid: number;
  child: ChildProcess;
  /** What the server wrote: everything with `output: 'keep'`, otherwise what it wrote until it listened. */
  output(): { stdout: string; stderr: string };
  /** SIGTERM (a graceful shutdown), then waits for the process to end. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), then waits for the process to end. */
  kill(): Promise<void>;
}

export interface ServerProcessOptions {
  /** Working directory, where the server looks for `.env`; the caller's by default. */
  cwd?: string;
  /** Node flags after the start script's; a later flag wins (e.g. `--max-semi-space-size=0`). */
  nodeArgs?: string[];
  /**
   * `discard` (default): stdout and stderr are read until the server listens, then drained.
   * `keep`: both stay readable through `output()`, for tests about what the server logs.
   * `inherit-stderr`: stderr goes to the caller's, so a benchmark shows a crash as it happens.
   */
  output?: 'discard' | 'keep' | 'inherit-stderr';
}

/** The server ended before it logged its URL (a bad configuration, a failed migration …). */
export class ServerStartError extends Error {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  constructor(code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string) {
    super(`the server exited (${signal ?? `code ${code}`}) before listening:\n${stderr}${stdout}`);
    this.code = code;
    this.signal = signal;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}

const SERVER_DIR = fileURLToPath(new URL('../../../apps/server/', import.meta.url));

/** `[NAME=value …] node [--flag …] <file>`, the form the server's `start` script must keep. */
function startCommand(): { env: Record<string, string>; nodeArgs: string[]; main: string } {
  const { scripts } = JSON.parse(readFileSync(path.join(SERVER_DIR, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const script = scripts.start;
  const words = script.trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (/^[A-Z_][A-Z0-9_]*=/.test(words[0] ?? '')) {
    const word = words.shift()!;
    const at = word.indexOf('=');
    env[word.slice(0, at)] = word.slice(at + 1);
  }
  const [command, ...nodeArgs] = words;
  const entry = nodeArgs.pop();
  // Quoting, expansion or a command other than node would need a shell to mean what it says:
  // refuse rather than start something production does not.
  if (
    command !== 'node' ||
    !entry ||
    /['"$`\\;&|<>]/.test(script) ||
    nodeArgs.some((a) => !a.startsWith('-'))
  )
    throw new Error(`apps/server's start script is not "[NAME=value …] node [--flag …] <file>": ${script}`);
  const main = path.join(SERVER_DIR, entry);
  if (!existsSync(main)) throw new Error(`${main} is missing: build the server first (npm run build)`);
  return { env, nodeArgs, main };
}

// A test or benchmark that fails part-way may never stop its servers; none may outlive this process
// (holding a port, a database or a data directory), whether it exits or is ended by a signal (as
// vitest ends its workers, with SIGTERM, which skips 'exit' handlers).
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const orphan of running) orphan.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll();
      process.off(signal, onSignal);
      // Ending as the signal would have, unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/**
 * Starts the server with `env` over the start script's (and over PORT=0, HOST=127.0.0.1,
 * LOG_LEVEL=info) and resolves once it logs the URL it listens on. Only PATH comes from this
 * process's environment, so the caller's DB_CONNECTION or DATA_DIR never leaks in.
 */
export async function startServerProcess(
  env: Record<string, string>,
  options: ServerProcessOptions = {},
): Promise<ServerProcess> {
  const start = startCommand();
  const mode = options.output ?? 'discard';
  const child = spawn(process.execPath, [...start.nodeArgs, ...(options.nodeArgs ?? []), start.main], {
    cwd: options.cwd,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      // The URL is read from the info-level "listening" line.
      LOG_LEVEL: 'info',
      ...start.env,
      ...env,
    },
    stdio: ['ignore', 'pipe', mode === 'inherit-stderr' ? 'inherit' : 'pipe'],
  });
  killOnExit(child);
  // 'close', not 'exit': by then the pipes are drained, so `output()` has the last lines too.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));

  let stdout = '';
  let stderr = '';
  const onStdout = (chunk: Buffer) => {
    stdout += chunk;
  };
  const onStderr = (chunk: Buffer) => {
    stderr += chunk;
  };
  child.stdout!.on('data', onStdout);
  child.stderr?.on('data', onStderr);

  const url = await new Promise<string>((resolve, reject) => {
    const onListening = () => {
      const match = /"url":"(http:\/\/[^"]+)"/.exec(stdout);
      if (!match) return;
      child.stdout!.off('data', onListening);
      child.off('close', onExit);
      resolve(match[1]!.replace('localhost', '127.0.0.1'));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      reject(new ServerStartError(code, signal, stdout, stderr));
    child.stdout!.on('data', onListening);
    child.once('close', onExit);
    child.once('error', reject);
  });

  if (mode !== 'keep') {
    // Unread pipes fill up and block the server's writes; past this point nobody reads the log.
    child.stdout!.off('data', onStdout).resume();
    child.stderr?.off('data', onStderr).resume();
  }

  return {
    url,
    pid: child.pid!,
    child,
    output: () => ({ stdout, stderr }),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Logs in as the bootstrap administrator (`admin`, whose password the server got as ADMIN_PASSWORD). */
export async function adminToken(url: string, password: string): Promise<string> {
  const res = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  if (res.status !== 200) throw new Error(`login as admin failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}
