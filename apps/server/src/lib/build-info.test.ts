import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gitCommit } from './build-info.ts';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();

/** A repository with one commit on `main`, and a directory inside it. */
function repository() {
  const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'synk-git-')));
  git(root, 'init', '-q', '-b', 'main');
  git(root, 'commit', '-q', '--allow-empty', '-m', 'first');
  const inside = path.join(root, 'apps', 'server', 'dist');
  mkdirSync(inside, { recursive: true });
  return { root, inside, head: git(root, 'rev-parse', 'HEAD') };
}

describe('gitCommit', () => {
  it('reads the commit of a clone', () => {
    const { inside, head } = repository();
    expect(gitCommit(inside)?.commit).toBe(head);
  });

  it('reads a branch kept in packed-refs', () => {
    const { root, inside, head } = repository();
    git(root, 'pack-refs', '--all');
    expect(gitCommit(inside)).toEqual({ commit: head, time: expect.any(String) });
  });

  it('reads the commit of a worktree, whose branch lives in the main repository', () => {
    const { root, head } = repository();
    const worktree = `${root}-worktree`;
    git(root, 'worktree', 'add', '-q', '-b', 'feature', worktree);
    git(worktree, 'commit', '-q', '--allow-empty', '-m', 'second');
    const featureHead = git(worktree, 'rev-parse', 'HEAD');
    expect(featureHead).not.toBe(head);
    expect(gitCommit(worktree)?.commit).toBe(featureHead);
    git(root, 'pack-refs', '--all');
    expect(gitCommit(worktree)?.commit).toBe(featureHead);
  });

  it('reads a detached HEAD', () => {
    const { root, inside, head } = repository();
    git(root, 'checkout', '-q', '--detach');
    expect(gitCommit(inside)?.commit).toBe(head);
  });
});
