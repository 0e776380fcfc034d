import { randomUUID } from 'node:crypto';
import { link, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';

/** The files of one app bundle version, held for one reader (a download of the whole version). */
export interface VersionSnapshot {
  /** Each file's path in the bundle and where to read it. */
  files: { name: string; file: string }[];
  /** Lets go of the files (removes the links); safe to call more than once. */
  release(): Promise<void>;
}

/** The version's folder was removed (pruned) before all its files were linked. */
export class VersionGone extends Error {}

/** File systems that cannot hard-link (some network and FUSE mounts) say so with these. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EMLINK', 'ENOSYS']);

/**
 * Hard-links the files of `versionDir` into a folder of their own under `tmpDir`, before a reader
 * answers: a prune of the version meanwhile (by this process or another sharing the volume)
 * unlinks the version's names, never these, so the reader gets every file whole, and a version
 * pruned before the links exist is found here, while a clean error can still be answered.
 * Where hard links are not supported, the reader reads the version's folder as it is (a prune
 * meanwhile then cuts it). Stale folders a crash leaves are removed at the next start with the
 * rest of `tmpDir`.
 */
export async function snapshotVersion(
  versionDir: string,
  names: string[],
  tmpDir: string,
): Promise<VersionSnapshot> {
  const root = path.join(tmpDir, `download-${randomUUID()}`);
  const release = () => rm(root, { recursive: true, force: true });
  const made = new Set<string>();
  const files: VersionSnapshot['files'] = [];
  try {
    for (const name of names) {
      const file = path.join(root, name);
      const dir = path.dirname(file);
      if (!made.has(dir)) {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        made.add(dir);
      }
      await link(path.join(versionDir, name), file);
      files.push({ name, file });
    }
  } catch (err) {
    await release();
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOENT') throw new VersionGone(`${versionDir} was removed`);
    if (NO_LINKS.has(code))
      return {
        files: names.map((name) => ({ name, file: path.join(versionDir, name) })),
        release: async () => {},
      };
    throw err;
  }
  return { files, release };
}
