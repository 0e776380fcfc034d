import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ServerProcess, startServerProcess } from '@synk/test-support/server-process';
import { afterAll, beforeAll } from 'vitest';

/** The real `synk` binary, run by the conformance cases as a user would. */
export const SYNK_BIN = fileURLToPath(new URL('../../../packages/cli/bin/synk.js', import.meta.url));
const run = promisify(execFile);

export interface SynkResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `synk` in `cwd` with its configuration in `configDir` and nothing else of this process's
 * environment but PATH (plus `env`), so no setting of the machine running the tests leaks in.
 */
export async function runSynk(
  cwd: string,
  configDir: string,
  env: Record<string, string>,
  args: string[],
): Promise<SynkResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SYNK_BIN, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', SYNK_CONFIG_DIR: configDir, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The administrator's password of the server processes `cliServer` starts. */
export const CLI_ADMIN_PASSWORD = 'cli-admin-password';

/**
 * A test file's own server process (its data in a new temporary directory, `work`), started
 * before its cases and stopped after them, with `synk` run in `work` against a configuration of
 * its own. Call it at the top of the file.
 */
export function cliServer(name: string) {
  const work = mkdtempSync(path.join(tmpdir(), `synk-${name}-`));
  const configDir = path.join(work, 'config');
  let server: ServerProcess | undefined;
  beforeAll(async () => {
    server = await startServerProcess({
      DATA_DIR: path.join(work, 'data'),
      ADMIN_PASSWORD: CLI_ADMIN_PASSWORD,
      NODE_ENV: 'test',
    });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });
  return {
    work,
    configDir,
    /** The server's base URL (once started). */
    get url(): string {
      if (!server) throw new Error('the server has not started');
      return server.url;
    },
    synk: (...args: string[]) => runSynk(work, configDir, {}, args),
    synkWith: (env: Record<string, string>, ...args: string[]) => runSynk(work, configDir, env, args),
  };
}
