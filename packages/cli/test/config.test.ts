import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { serverStateDir } from '../src/config.ts';
import { synk, workDir } from './run-cli.ts';

describe('a configuration file that cannot be used', () => {
  it.each([
    [
      'is not JSON',
      '{"current": "default", "profiles": {"default": {"server": "http://a"}},',
      /is not valid JSON \(.+\)/,
    ],
    ['is not a configuration', '[1, 2]', /is not a synk configuration/],
    [
      'has a profile without a server',
      '{"current": "a", "profiles": {"a": {"username": "x"}}}',
      /is not a synk configuration/,
    ],
  ])('that %s is an error naming it, and is never overwritten', async (_, text, message) => {
    const cwd = workDir();
    const file = path.join(cwd, 'config', 'config.json');
    mkdirSync(path.dirname(file));
    writeFileSync(file, text);
    for (const args of [
      ['config', 'set', 'username', 'bob'],
      ['--server', 'http://127.0.0.1:1', 'config', 'init'],
      ['config', 'view'],
    ]) {
      const res = await synk(cwd, args);
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.stderr).toMatch(new RegExp(`^Error: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} `));
      expect(res.stderr).toMatch(message);
      expect(readFileSync(file, 'utf8')).toBe(text);
    }
  });

  it('is none at all when missing', async () => {
    const cwd = workDir();
    expect(await synk(cwd, ['config', 'view'])).toMatchObject({
      code: 0,
      stdout: 'No profiles yet: synk config init --server <url>\n',
    });
  });
});

describe('where the configuration lives', () => {
  const init = ['--server', 'http://127.0.0.1:1', 'config', 'init'];

  it.each([
    ['an empty', ''],
    ['a relative', 'rel'],
  ])('%s XDG_CONFIG_HOME is ignored (~/.config/synk, not the working directory)', async (_, xdg) => {
    const cwd = workDir();
    const home = path.join(cwd, 'home');
    const res = await synk(cwd, init, { HOME: home, XDG_CONFIG_HOME: xdg });
    expect(res.code, res.stderr).toBe(0);
    expect(existsSync(path.join(home, '.config', 'synk', 'config.json'))).toBe(true);
    expect(existsSync(path.join(cwd, 'synk'))).toBe(false);
    expect(existsSync(path.join(cwd, 'rel'))).toBe(false);
  });

  it('an absolute XDG_CONFIG_HOME is used', async () => {
    const cwd = workDir();
    const xdg = path.join(cwd, 'xdg');
    expect((await synk(cwd, init, { HOME: path.join(cwd, 'home'), XDG_CONFIG_HOME: xdg })).code).toBe(0);
    expect(existsSync(path.join(xdg, 'synk', 'config.json'))).toBe(true);
  });

  it('an empty SYNK_CONFIG_DIR is refused rather than taken for unset', async () => {
    const cwd = workDir();
    const home = path.join(cwd, 'home');
    const res = await synk(cwd, init, { HOME: home, SYNK_CONFIG_DIR: '' });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/SYNK_CONFIG_DIR is set but empty/);
    expect(existsSync(home)).toBe(false);
  });
});

describe('config init and config set server', () => {
  const config = (cwd: string) => JSON.parse(readFileSync(path.join(cwd, 'config', 'config.json'), 'utf8'));

  it('update an existing profile, keeping what is not given again', async () => {
    const cwd = workDir();
    await synk(cwd, ['--server', 'http://127.0.0.1:1', 'config', 'init', '--username', 'alice']);
    const res = await synk(cwd, ['--server', 'http://127.0.0.1:2', 'config', 'init']);
    expect(res.code, res.stderr).toBe(0);
    expect(config(cwd).profiles.default).toEqual({ server: 'http://127.0.0.1:2', username: 'alice' });
  });

  it('refuse a server URL the commands could not use, and save nothing', async () => {
    const cwd = workDir();
    await synk(cwd, ['--server', 'http://127.0.0.1:1', 'config', 'init', '--username', 'alice']);
    const before = config(cwd);
    for (const args of [
      ['--server', 'not a url', 'config', 'init'],
      ['--profile', 'other', '--server', 'ftp://example.org', 'config', 'init'],
      ['config', 'set', 'server', 'not a url'],
    ]) {
      const res = await synk(cwd, args);
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.stderr).toMatch(/^Error: Not an http\(s\) server URL: /);
    }
    expect(config(cwd)).toEqual(before);
  });
});

describe('a damaged session file', () => {
  it('is named as the local file it is, not taken for a server that does not answer JSON', async () => {
    const cwd = workDir();
    const server = 'http://127.0.0.1:1';
    const previous = process.env.SYNK_CONFIG_DIR;
    process.env.SYNK_CONFIG_DIR = path.join(cwd, 'config');
    const dir = serverStateDir('default', server);
    if (previous === undefined) delete process.env.SYNK_CONFIG_DIR;
    else process.env.SYNK_CONFIG_DIR = previous;
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'auth%3Atokens.json'), '{"token": "cut off');
    for (const command of [['users', 'list'], ['logout']]) {
      const res = await synk(cwd, ['--server', server, ...command]);
      expect(res.code, command.join(' ')).toBe(1);
      expect(res.stderr).not.toMatch(/server's answer/);
      expect(res.stderr).toMatch(`the session kept in ${dir} is damaged`);
      expect(res.stderr).toMatch(/log in again/);
    }
  });
});

describe('writing the configuration', () => {
  it('gives it mode 0600 whatever a write cut short left behind', async () => {
    const cwd = workDir();
    const dir = path.join(cwd, 'config');
    mkdirSync(dir);
    // A temporary file of an earlier write, created by a looser umask and never renamed.
    writeFileSync(path.join(dir, 'config.json.tmp'), 'left over', { mode: 0o644 });
    expect((await synk(cwd, ['--server', 'http://127.0.0.1:1', 'config', 'init'])).code).toBe(0);
    expect(statSync(path.join(dir, 'config.json')).mode & 0o777).toBe(0o600);
  });
});
