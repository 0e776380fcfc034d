import { parseJson } from '@synk/json';
import { CorruptValueError } from './errors.ts';
import { webLock } from './locks.ts';
import type { SyncStorage } from './storage.ts';

const STORE = 'kv';

/**
 * Browser IndexedDB: one object store of JSON text per database. Writes resolve when their
 * transaction completes with `durability: 'strict'`, so a saved record or an in-flight batch is
 * on disk before `records.save()`/`sync()` moves on, and survives a reload or a crash of the tab.
 * Unlike `localStorage` it is not capped at a few MiB and does not block the page while writing.
 * Every tab and worker of the origin opens the same database, so clients are coordinated across
 * them with Web Locks. Attachments an app keeps in IndexedDB through its own `LocalFiles` arrive
 * whole (see `LocalFiles.writeStream` for why a stream would not save memory there).
 */
export class IndexedDBStorage implements SyncStorage {
  readonly #db: Promise<IDBDatabase>;
  readonly #name: string;

  constructor(name = 'synk', factory: IDBFactory = globalThis.indexedDB) {
    this.#name = name;
    this.#db = new Promise((resolve, reject) => {
      const request = factory.open(name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
      request.onblocked = () =>
        reject(new Error(`IndexedDB "${name}" is blocked by another open connection`));
    });
  }

  async #run<T>(mode: IDBTransactionMode, operation: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.#db;
    return new Promise<T>((resolve, reject) => {
      const transaction = db.transaction(STORE, mode, { durability: 'strict' });
      const request = operation(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error ?? request.error);
      transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'));
    });
  }

  async get<T>(key: string): Promise<T | undefined> {
    const text = await this.#run<string | undefined>('readonly', (store) => store.get(key));
    return text === undefined ? undefined : (CorruptValueError.parse(text, parseJson, key) as T);
  }

  async set(key: string, value: unknown): Promise<void> {
    await this.#run('readwrite', (store) => store.put(JSON.stringify(value), key));
  }

  async delete(key: string): Promise<void> {
    await this.#run('readwrite', (store) => store.delete(key));
  }

  lock<T>(name: string, critical: () => Promise<T>): Promise<T> {
    return webLock(`synk-indexeddb:${this.#name}:${name}`, critical);
  }

  /** Closes the connection (e.g. before deleting the database). */
  async close(): Promise<void> {
    (await this.#db).close();
  }
}
