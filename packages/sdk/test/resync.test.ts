import { describe, expect, it } from 'vitest';
import { ResyncPass } from '../src/resync.ts';
import { MemoryStorage } from '../src/storage.ts';

const CURSOR = 'cursor:*';
const page = (change_cutoff: number, generation = 1) => ({ change_cutoff, generation });

/** A storage whose deletes fail once `failDeletes` is set, as a process killed midway. */
class StoppingStorage extends MemoryStorage {
  failDeletes = false;
  override async delete(key: string): Promise<void> {
    if (this.failDeletes) throw new Error(`stopped before deleting ${key}`);
    return super.delete(key);
  }
}

describe('ResyncPass', () => {
  it('keeps each applied page’s ids and its cursor, and is resumed from the storage', async () => {
    const storage = new MemoryStorage();
    const pass = await ResyncPass.begin(storage, CURSOR, 'pass-1');
    expect(pass.cursor).toBe(0);
    await pass.applied(['a', 'b'], page(7));
    await pass.applied(['c'], page(9));
    const resumed = await ResyncPass.resume(storage, CURSOR);
    expect(resumed).toBeDefined();
    expect(resumed!.pass).toBe('pass-1');
    expect(resumed!.cursor).toBe(9);
    expect([...(await resumed!.keep(['d'], ['queued']))].sort()).toEqual(['a', 'b', 'c', 'd', 'queued']);
  });

  it('starts over only for a purge newer than the generation of its first page', async () => {
    const pass = await ResyncPass.begin(new MemoryStorage(), CURSOR, 'pass-1');
    await pass.applied(['a'], page(5, 3));
    expect(pass.outdatedBy({ resync_required: true, generation: 3 })).toBe(false);
    expect(pass.outdatedBy({ resync_required: false, generation: 4 })).toBe(false);
    expect(pass.outdatedBy({ resync_required: true, generation: 4 })).toBe(true);
  });

  it('a new pass clears the pages of the one it replaces', async () => {
    const storage = new MemoryStorage();
    const first = await ResyncPass.begin(storage, CURSOR, 'pass-1');
    await first.applied(['a'], page(3));
    await first.applied(['b'], page(6));
    const second = await ResyncPass.begin(storage, CURSOR, 'pass-2');
    expect(second.cursor).toBe(0);
    expect(await storage.get(`resync:${CURSOR}:page:1`)).toBeUndefined();
    expect([...(await second.keep(['c'], []))]).toEqual(['c']);
  });

  it('once finished is never resumed, also when stopped while deleting its pages', async () => {
    const storage = new StoppingStorage();
    const pass = await ResyncPass.begin(storage, CURSOR, 'pass-1');
    await pass.applied(['a'], page(3));
    await pass.applied(['b'], page(6));
    storage.failDeletes = true;
    await expect(pass.finish()).rejects.toThrow(/stopped/);
    storage.failDeletes = false;
    // A pass resumed with some pages gone would have the app delete records the server has.
    expect(await ResyncPass.resume(storage, CURSOR)).toBeUndefined();
    for (const key of [`resync:${CURSOR}`, `resync:${CURSOR}:page:0`, `resync:${CURSOR}:page:1`])
      expect(await storage.get(key)).toBeUndefined();
  });
});
