export interface SyncEvents {
  'sync:started': { at: Date };
  'sync:progress': { phase: 'pull' | 'push'; pulled: number; pushed: number };
  'sync:completed': { pulled: number; pushed: number; failed: number };
  'sync:failed': { error: unknown };
  'queue:size': { pending: number; deadLetters: number };
  'auth:refreshed': { expiresAt: number };
  /** Bytes of an attachment handed to the network so far (per 64 KiB in Node; start and end elsewhere). */
  'upload:progress': { id: string; loaded: number; total: number };
}

type Listener<T> = (event: T) => void;

/**
 * Reports a listener's error the way a browser reports one thrown by an event listener: later, on
 * its own (an uncaught error: `window.onerror`, Node's 'uncaughtException'), never into the SDK
 * call that emitted the event.
 */
const reportLater = (err: unknown) =>
  queueMicrotask(() => {
    throw err;
  });

/** A minimal typed event emitter (works the same in Node, browsers and React Native). */
export class Emitter {
  readonly #listeners = new Map<keyof SyncEvents, Set<Listener<never>>>();
  readonly #report: (err: unknown) => void;

  /**
   * A listener that throws must not break the SDK call that emitted the event (a `save()` would
   * reject after the record was stored, a sync would stop halfway) nor keep the other listeners
   * from hearing it: its error goes to `report`.
   */
  constructor(report: (err: unknown) => void = reportLater) {
    this.#report = report;
  }

  on<K extends keyof SyncEvents>(name: K, listener: Listener<SyncEvents[K]>): () => void {
    const set = this.#listeners.get(name) ?? new Set();
    set.add(listener as Listener<never>);
    this.#listeners.set(name, set);
    return () => set.delete(listener as Listener<never>);
  }

  emit<K extends keyof SyncEvents>(name: K, event: SyncEvents[K]): void {
    for (const listener of this.#listeners.get(name) ?? []) {
      try {
        (listener as Listener<SyncEvents[K]>)(event);
      } catch (err) {
        this.#report(err);
      }
    }
  }
}
