import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

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
