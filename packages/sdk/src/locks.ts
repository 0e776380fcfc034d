import type { SyncStorage } from './storage.ts';

/** The lock each storage object holds in this realm, by name: a chain of the critical sections waiting for it. */
const held = new WeakMap<SyncStorage, Map<string, Promise<unknown>>>();

/**
 * Runs `critical` holding the lock `name` of `storage`: first among the clients of this realm that
 * share the storage object, then, when the storage can (`SyncStorage.lock`), among every client of
 * the same store elsewhere (other tabs, workers, processes). Always in that order, and no critical
 * section takes a second lock, so two of them never wait on each other. Not re-entrant.
 */
export function withLock<T>(storage: SyncStorage, name: string, critical: () => Promise<T>): Promise<T> {
  let chains = held.get(storage);
  if (!chains) {
    chains = new Map();
    held.set(storage, chains);
  }
  const previous = chains.get(name) ?? Promise.resolve();
  const run = previous.then(() => (storage.lock ? storage.lock(name, critical) : critical()));
  const settled = run.catch(() => undefined);
  chains.set(name, settled);
  // The last one out forgets the chain, so a storage used once does not keep a map entry per name.
  void settled.then(() => {
    if (chains.get(name) === settled) chains.delete(name);
  });
  return run;
}

interface LockManager {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/**
 * The platform's Web Locks (`navigator.locks`: browsers, their workers, Node's worker threads), for
 * storage adapters whose store is shared across tabs or workers of one origin. Where there are
 * none, `critical` just runs: only this realm's clients are coordinated then (by `withLock`).
 */
export function webLock<T>(name: string, critical: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks;
  return locks ? locks.request(name, critical) : critical();
}
