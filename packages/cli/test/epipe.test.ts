import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, workDir } from './run-cli.ts';

describe('standard output closed by its reader (synk … | head -1)', () => {
  it('ends the command quietly: no EPIPE stack trace', async () => {
    const cwd = workDir();
    // The reader is gone before synk writes: every write of it fails with EPIPE.
    const child = spawn(process.execPath, [BIN, 'completion'], {
      cwd,
      env: { PATH: process.env.PATH ?? '', SYNK_CONFIG_DIR: path.join(cwd, 'config') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    const [code] = await once(child, 'close');
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
