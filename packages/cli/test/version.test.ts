import { describe, expect, it } from 'vitest';
import { synk, workDir } from './run-cli.ts';

describe("synk's own version", () => {
  const cwd = workDir();

  it('is printed by --version before any command, and by -V and --cli-version anywhere', async () => {
    for (const args of [
      ['--version'],
      ['--json', '--version'],
      ['--server', 'http://127.0.0.1:1', '--version'],
      ['-V'],
      ['--cli-version'],
    ])
      expect(await synk(cwd, args), args.join(' ')).toEqual({ code: 0, stdout: '0.1.0\n', stderr: '' });
  });

  it("is not printed for a command's own --version", async () => {
    // app-bundle download's --version is the bundle version: the command runs (and, with no
    // server configured, says so) instead of synk printing its version.
    const res = await synk(cwd, ['app-bundle', 'download', '--version', '0001']);
    expect(res.stdout).toBe('');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/No server configured/);
  });
});
