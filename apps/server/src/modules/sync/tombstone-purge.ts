import type { TombstonePurge } from './sync.store.ts';

/**
 * What a purge makes of the repository's generation, given the tombstones it found (`count`, and
 * `lastVersion`, the highest of their versions) and the generation before it. A purge that finds
 * nothing changes nothing: devices need not resync for it. purged_through never moves back (an
 * earlier purge may have removed newer tombstones than a later one finds).
 */
export function purgeOutcome(
  found: { count: number; lastVersion: number | null },
  before: { generation: number; purgedThrough: number },
): TombstonePurge {
  if (found.count === 0 || found.lastVersion === null) return { purged: 0, ...before };
  return {
    purged: found.count,
    generation: before.generation + 1,
    purgedThrough: Math.max(before.purgedThrough, found.lastVersion),
  };
}
