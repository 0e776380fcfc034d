import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BuildInfo } from '../app-context.ts';
import type { Config } from '../config.ts';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/**
 * Finds the commit of the git checkout `from` lies in, without spawning git: a plain clone, a
 * worktree (whose `.git` is a file naming its directory, with branches kept in the main one) and
 * branches kept in `packed-refs` (a fresh clone's, or any after `git gc`). The last two were
 * reported as "unknown". The time is when HEAD's ref last moved.
 */
export function gitCommit(from: string): { commit: string; time: string } | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const dotGit = path.join(dir, '.git');
    if (existsSync(dotGit)) {
      try {
        return headCommit(gitDirOf(dotGit));
      } catch {
        return undefined;
      }
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

function gitDirOf(dotGit: string): string {
  if (statSync(dotGit).isDirectory()) return dotGit;
  const target = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'))?.[1]?.trim();
  if (!target) throw new Error(`${dotGit} names no git directory`);
  return path.resolve(path.dirname(dotGit), target);
}

function headCommit(gitDir: string): { commit: string; time: string } | undefined {
  const headFile = path.join(gitDir, 'HEAD');
  const head = readFileSync(headFile, 'utf8').trim();
  const timeOf = (file: string) => statSync(file).mtime.toISOString();
  if (!head.startsWith('ref: ')) return { commit: head, time: timeOf(headFile) };
  const ref = head.slice(5);
  const commonFile = path.join(gitDir, 'commondir');
  const common = existsSync(commonFile)
    ? path.resolve(gitDir, readFileSync(commonFile, 'utf8').trim())
    : gitDir;
  for (const base of new Set([gitDir, common])) {
    const refFile = path.join(base, ref);
    if (existsSync(refFile)) return { commit: readFileSync(refFile, 'utf8').trim(), time: timeOf(refFile) };
  }
  const packedFile = path.join(common, 'packed-refs');
  if (!existsSync(packedFile)) return undefined;
  for (const line of readFileSync(packedFile, 'utf8').split('\n')) {
    const [commit, name] = line.trim().split(' ');
    if (name === ref && commit && /^[0-9a-f]{40,64}$/.test(commit))
      return { commit, time: timeOf(packedFile) };
  }
  return undefined;
}

export function resolveBuildInfo(config: Config): BuildInfo {
  const git = config.build.commit ? undefined : gitCommit(path.dirname(new URL(import.meta.url).pathname));
  return {
    version: packageJson.version,
    commit: config.build.commit ?? git?.commit ?? 'unknown',
    buildTime: config.build.time ?? git?.time ?? 'unknown',
  };
}
