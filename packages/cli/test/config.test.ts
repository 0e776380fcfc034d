import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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
