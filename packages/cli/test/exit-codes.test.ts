import { describe, expect, it } from 'vitest';
import { synk, workDir } from './run-cli.ts';

const cwd = workDir();
/** Nothing listens there: a command that got as far as a request would fail with exit 1. */
const NOWHERE = ['--server', 'http://127.0.0.1:1'];

describe('exit codes', () => {
  it('a command called wrongly exits 2, with the reason on stderr and nothing on stdout', async () => {
    for (const [args, reason] of [
      [['bogus'], /unknown command 'bogus'/],
      [['users', 'list', '--bogus'], /unknown option '--bogus'/],
      [['sync', 'pull'], /missing required argument 'out'/],
      [['users', 'create', 'someone', '--password', 'long-enough-1'], /required option '--role <role>'/],
      [['sync', 'pull', 'out.json', '--since', 'x'], /must be a whole number/],
      [['sync', 'conflicts', '--limit', '0'], /--limit.*must be a whole number ≥ 1/],
      [['sync', 'conflicts', '--after', 'x'], /--after.*must be a whole number ≥ 0/],
      [['attachments', 'delete'], /missing required argument 'id'/],
      [['attachments', 'delete', '..'], /must be an attachment id/],
      [['attachments', 'download', '.'], /must be an attachment id/],
      [['attachments', 'exists', 'a/b'], /must be an attachment id/],
      [['attachments', 'upload', 'x.jpg', '--id', '../x'], /must be an attachment id/],
      [['attachments', 'upload', 'my photo.jpg'], /"my photo.jpg" is not a valid attachment id.*--id/],
      [['users'], /Usage: synk users/],
      [[...NOWHERE, 'login', '--username', 'admin'], /login needs --password/],
      [[...NOWHERE, 'config', 'set', 'colour', 'blue'], /Only "server" and "username"/],
    ] as const) {
      const res = await synk(cwd, [...args]);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr, args.join(' ')).toMatch(reason);
      expect(res.stdout, args.join(' ')).toBe('');
    }
  });

  it('help exits 0, and a failure that is not the caller’s mistake stays 1', async () => {
    for (const args of [['--help'], ['users', 'create', '--help'], ['help', 'sync']])
      expect((await synk(cwd, args)).code, args.join(' ')).toBe(0);
    expect((await synk(cwd, [...NOWHERE, 'version'])).code).toBe(1);
  });
});
