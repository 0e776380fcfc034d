import { describe, expect, it } from 'vitest';
import { synk, workDir } from './run-cli.ts';

const cwd = workDir();

/** The command names a help text lists under "Commands:" (without commander's own `help`). */
function subcommands(help: string): string[] {
  const section = help.split('\nCommands:\n')[1] ?? '';
  return [...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!).filter((name) => name !== 'help');
}

describe('--help', () => {
  it('of every command says what it does and lists the options that work after it', async () => {
    const seen: string[] = [];
    const visit = async (path: string[]): Promise<void> => {
      const res = await synk(cwd, [...path, '--help']);
      const name = ['synk', ...path].join(' ');
      expect(res.code, name).toBe(0);
      seen.push(name);
      if (path.length > 0) {
        // Usage line, blank line, then the description (commander goes straight to "Options:" without one).
        expect(res.stdout.split('\n')[2], `${name} has a description`).not.toMatch(/^(Options:)?$/);
        for (const option of ['--server <url>', '--profile <name>', '--json'])
          expect(res.stdout, `${name} --help lists ${option}`).toContain(option);
      }
      for (const sub of subcommands(res.stdout)) await visit([...path, sub]);
    };
    await visit([]);
    expect(seen).toContain('synk users set-role');
    expect(seen).toContain('synk app-bundle download');
    expect(seen).toContain('synk sync conflicts');
    expect(seen).toContain('synk attachments delete');
  }, 120_000);
});
