import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BuildInfo } from '../app-context.ts';
import type { Config } from '../config.ts';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** Finds the commit of the git checkout the server runs from, without spawning git. */
function gitCommit(from: string): { commit: string; time: string } | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const gitDir = path.join(dir, '.git');
    if (existsSync(path.join(gitDir, 'HEAD'))) {
      try {
        const head = readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
        const refFile = head.startsWith('ref: ') ? path.join(gitDir, head.slice(5)) : undefined;
        if (refFile && !existsSync(refFile)) return undefined;
        const commit = refFile ? readFileSync(refFile, 'utf8').trim() : head;
        return { commit, time: statSync(refFile ?? path.join(gitDir, 'HEAD')).mtime.toISOString() };
      } catch {
        return undefined;
      }
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

export function resolveBuildInfo(config: Config): BuildInfo {
  const git = config.build.commit ? undefined : gitCommit(path.dirname(new URL(import.meta.url).pathname));
  return {
    version: packageJson.version,
    commit: config.build.commit ?? git?.commit ?? 'unknown',
    buildTime: config.build.time ?? git?.time ?? 'unknown',
  };
}
