import type { SyncStorage } from './storage.ts';

/**
 * A full resync pass. The server purges old tombstones; a device whose cursor is from before the
 * purge is told `resync_required`, since it may have missed deletions that can no longer be sent.
 * It then pulls everything again from version 0, and once the pass is complete it drops every local
 * record the pass did not return. The pass is kept in the sync state, as the cursor is: its own
 * cursor and the ids of the records each applied page held (one key per page, so a page costs one
 * small write however long the pass), so that an app restarted midway resumes the pass and still
 * ends with the clean-up.
 */
interface PassState {
  pass: string;
  /** Where the pass goes on from: the change_cutoff of its last applied page. */
  cursor: number;
  /** Pages applied so far; their ids are under `pageKey(0 … pages - 1)`. */
  pages: number;
  /** The repository's generation when the pass read its first page (from version 0). */
  generation?: number;
  /** The clean-up is done and the cursor stored: only the pass's own keys are left to delete. */
  finished?: true;
}

/** How a page of a resync pass is marked (`page.resync`). */
export type ResyncMark =
  | {
      /** Identifies the pass: the same across restarts of the app, a new one when a pass starts over. */
      pass: string;
      /** The form types the pass covers (`[]`: all): the clean-up concerns only local records of these. */
      schemaTypes: string[];
      done: false;
    }
  | {
      pass: string;
      schemaTypes: string[];
      /** The final page: apply it, then delete every local record (of `schemaTypes`) whose id is not in `keep`. */
      done: true;
      /**
       * The ids of every record the pass returned, and of the records this device still has to
       * push (queued, in flight or dead-lettered): the server has not got those yet, they must stay.
       */
      keep: ReadonlySet<string>;
    };

export class ResyncPass {
  readonly #storage: SyncStorage;
  readonly #key: string;
  #state: PassState;

  private constructor(storage: SyncStorage, key: string, state: PassState) {
    this.#storage = storage;
    this.#key = key;
    this.#state = state;
  }

  /** The pass in progress for the cursor under `cursorKey`, if one is. */
  static async resume(storage: SyncStorage, cursorKey: string): Promise<ResyncPass | undefined> {
    const key = stateKey(cursorKey);
    const state = await storage.get<PassState>(key);
    if (!state) return undefined;
    const pass = new ResyncPass(storage, key, state);
    if (!state.finished) return pass;
    await pass.finish(); // the app stopped while the keys of a finished pass were deleted
    return undefined;
  }

  /** Starts a pass from version 0, replacing (and clearing) one in progress: its pages may predate a newer purge. */
  static async begin(storage: SyncStorage, cursorKey: string, pass: string): Promise<ResyncPass> {
    const key = stateKey(cursorKey);
    const earlier = await storage.get<PassState>(key);
    const state: PassState = { pass, cursor: 0, pages: 0 };
    await storage.set(key, state);
    for (let i = 0; i < (earlier?.pages ?? 0); i++) await storage.delete(pageKey(key, i));
    return new ResyncPass(storage, key, state);
  }

  get pass(): string {
    return this.#state.pass;
  }

  get cursor(): number {
    return this.#state.cursor;
  }

  /**
   * Whether a page read during the pass means it must start over. Its later pages start above 0
   * and below purged_through, so the server says `resync_required` on them too: that is the purge
   * the pass is for. Only a purge after its first page was read (a newer generation) may have taken
   * the tombstone of a record the pass has returned already.
   */
  outdatedBy(page: { resync_required: boolean; generation: number }): boolean {
    return page.resync_required && page.generation !== this.#state.generation;
  }

  /**
   * Records that the app applied a page: its ids first, then the pass's cursor, so that a crash in
   * between repeats the page (its ids are then kept twice, which does no harm) and never skips it.
   */
  async applied(ids: readonly string[], page: { change_cutoff: number; generation: number }): Promise<void> {
    const { pages } = this.#state;
    await this.#storage.set(pageKey(this.#key, pages), ids);
    this.#state = {
      ...this.#state,
      cursor: page.change_cutoff,
      pages: pages + 1,
      generation: this.#state.generation ?? page.generation,
    };
    await this.#storage.set(this.#key, this.#state);
  }

  /** Every id the pass returned before the final page, with the final page's and `more`. */
  async keep(finalPage: readonly string[], more: Iterable<string>): Promise<Set<string>> {
    const keep = new Set(finalPage);
    for (let i = 0; i < this.#state.pages; i++)
      for (const id of (await this.#storage.get<string[]>(pageKey(this.#key, i))) ?? []) keep.add(id);
    for (const id of more) keep.add(id);
    return keep;
  }

  /**
   * Ends the pass once the app has cleaned up and the cursor is stored. The pass is marked finished
   * before its pages' ids are deleted: an app stopped in between must not resume a pass with some of
   * its ids gone (it would delete records the server has); it finishes the deletion instead.
   */
  async finish(): Promise<void> {
    if (!this.#state.finished) {
      this.#state = { ...this.#state, finished: true };
      await this.#storage.set(this.#key, this.#state);
    }
    for (let i = 0; i < this.#state.pages; i++) await this.#storage.delete(pageKey(this.#key, i));
    await this.#storage.delete(this.#key);
  }
}

const stateKey = (cursorKey: string) => `resync:${cursorKey}`;
const pageKey = (key: string, page: number) => `${key}:page:${page}`;
