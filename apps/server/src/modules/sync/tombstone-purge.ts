import type { TombstonePurge, TombstonePurgeRequest } from './sync.store.ts';

/**
 * What a purge step makes of the repository's generation, given the tombstones it found (`count`,
 * and `lastVersion`, the highest of their versions) and the generation before it. A step that finds
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

/** The highest of a batch's versions; `null` for none. */
export function highest(versions: readonly number[]): number | null {
  let last: number | null = null;
  for (const version of versions) if (last === null || version > last) last = version;
  return last;
}

/** A dry run's answer: what purging every tombstone found would make of the generation, batch by batch. */
export function dryRunOutcome(
  found: { count: number; lastVersion: number | null },
  before: { generation: number; purgedThrough: number },
  batchSize: number,
): TombstonePurge {
  const outcome = purgeOutcome(found, before);
  const batches = Math.ceil(found.count / batchSize);
  return outcome.purged === 0 ? outcome : { ...outcome, generation: before.generation + batches };
}

/**
 * Runs a purge as batches of at most `batchSize` tombstones, each its own transaction (`step`), so
 * a purge of millions never holds the push lock for long: pushes go on between batches. Each batch
 * that removes something is a new generation, as a purge of its own would be: a device's resync pass
 * that began after one batch must start over if a later batch takes a tombstone it has not reached
 * (the SDK compares generations for that). Ends at the first batch that finds fewer than a full one.
 */
export async function purgeBatches(
  request: TombstonePurgeRequest,
  step: (batchSize: number) => Promise<TombstonePurge>,
): Promise<TombstonePurge> {
  let purged = 0;
  for (;;) {
    const batch = await step(request.batchSize);
    purged += batch.purged;
    if (batch.purged < request.batchSize) return { ...batch, purged };
    // A turn of the event loop between batches: requests that arrived meanwhile get theirs in.
    await new Promise((resolve) => setImmediate(resolve));
  }
}
