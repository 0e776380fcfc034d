/**
 * A small time-bounded cache of "is this user / session still good?" answers, so that checking
 * revocation does not cost a database round trip on every request.
 *
 * The bound: a change made through this process invalidates its entry at once; a change made by
 * another process sharing the database is seen here at most `ttlMs` later. Entries are capped, and
 * the oldest go first.
 */
export class TtlCache<V> {
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** Bumped by every `delete`: a load that saw it change read from before the change. */
  #deletions = 0;

  constructor(ttlMs: number, maxEntries = 10_000, now: () => number = () => Date.now()) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V): void {
    if (this.#ttlMs <= 0) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, { value, expiresAt: this.#now() + this.#ttlMs });
  }

  delete(key: string): void {
    this.#deletions += 1;
    this.#entries.delete(key);
  }

  /**
   * Loads through the cache. A value whose load overlapped a `delete` is returned but not kept: it
   * may have been read before the change that deleted the entry committed, and kept, it would have
   * let a just-revoked token through for another `ttlMs` on the very process that revoked it.
   */
  async through(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const deletions = this.#deletions;
    const value = await load();
    if (deletions === this.#deletions) this.set(key, value);
    return value;
  }
}
