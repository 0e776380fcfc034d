import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The real `synk` binary. */
export const BIN = fileURLToPath(new URL('../bin/synk.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A fresh directory for a test's files (and, by default, its configuration). */
export function workDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'synk-cli-test-'));
}

/**
 * Runs `synk args…` in `cwd` with only PATH, SYNK_CONFIG_DIR (`<cwd>/config` unless `env` sets
 * it or HOME) and `env` in its environment.
 */
export function synk(
  cwd: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd,
        env: {
          PATH: process.env.PATH ?? '',
          ...('SYNK_CONFIG_DIR' in env || 'HOME' in env ? {} : { SYNK_CONFIG_DIR: path.join(cwd, 'config') }),
          ...env,
        },
      },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: unknown }).code as number) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}
