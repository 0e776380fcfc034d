import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken } from '../src/http.ts';
import { push, record } from '../src/sync.ts';
import { runSynk, SYNK_BIN } from '../src/synk-cli.ts';

/** `synk sync watch`: the real binary, printing the change counter until interrupted. */
const target = useTarget({ SYNC_EVENTS_HEARTBEAT_MS: '200', SYNC_EVENTS_POLL_MS: '100' });
const work = mkdtempSync(path.join(tmpdir(), 'synk-cli-watch-'));
const configDir = path.join(work, 'config');
const synk = (...args: string[]) => runSynk(work, configDir, {}, args);

describe('synk sync watch', () => {
  it('prints the current version, then each new one as JSON lines, and ends with 0 on Ctrl-C', async () => {
    expect((await synk('config', 'init', '--server', target.baseUrl, '--username', 'admin')).code).toBe(0);
    expect((await synk('login', '--password', target.admin.password)).code).toBe(0);

    const child = spawn(process.execPath, [SYNK_BIN, 'sync', 'watch', '--json'], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '', SYNK_CONFIG_DIR: configDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit');
    try {
      const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      const nextVersion = async () => {
        const line = await lines.next();
        return (JSON.parse(line.value as string) as { current_version: number; at: string }).current_version;
      };
      const first = await nextVersion();
      const pushed = await push(target, await adminToken(target), [record(), record()]);
      expect(pushed.body.current_version).toBe(first + 2);
      expect(await nextVersion()).toBe(pushed.body.current_version);
      child.kill('SIGINT');
      const [code] = await exited;
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
