import { type ClientActivity, pullActivity } from './client-activity.ts';

/**
 * The latest pull of each device since the last flush, held in memory: a pull must not pay a
 * database write per page (pull throughput is a benchmarked goal), and an admin can wait a few
 * seconds to see it. Only the latest pull per device matters, so this holds one entry per device.
 */
export class PendingPulls {
  readonly #byClient = new Map<string, ClientActivity>();

  get size(): number {
    return this.#byClient.size;
  }

  note(clientId: string, username: string, at: number, cutoff: number): void {
    this.#keepLatest(pullActivity(clientId, username, at, cutoff));
  }

  /** Everything noted so far, in client_id order (so that concurrent flushes lock rows in one order), emptied. */
  take(): ClientActivity[] {
    const taken = [...this.#byClient.values()].sort((a, b) =>
      a.client_id < b.client_id ? -1 : a.client_id > b.client_id ? 1 : 0,
    );
    this.#byClient.clear();
    return taken;
  }

  /** Returns taken entries that could not be written, unless a later pull of the device replaced them. */
  putBack(entries: readonly ClientActivity[]): void {
    for (const entry of entries) this.#keepLatest(entry);
  }

  #keepLatest(entry: ClientActivity): void {
    const held = this.#byClient.get(entry.client_id);
    if (held === undefined || entry.at >= held.at) this.#byClient.set(entry.client_id, entry);
  }
}
