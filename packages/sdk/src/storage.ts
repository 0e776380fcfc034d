import { parseJson, parseJsonExact } from '@synk/json';
import { CorruptValueError } from './errors.ts';
import { webLock } from './locks.ts';

/**
 * Where the SDK keeps what must survive a restart: tokens, the pull cursor, the outbox. One small
 * async key/value interface, so an adapter for any platform (React Native AsyncStorage, SQLite,
 * IndexedDB) is a few lines. Values are JSON-serialisable.
 */
export interface SyncStorage {
  /**
   * The value stored under `key`, or undefined. A value that cannot be read back (a damaged
   * store) is best thrown as a CorruptValueError (a SyntaxError, as JSON.parse throws, is taken
   * for one too), never taken for absent.
   */
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Optional: runs `critical` holding the lock `name` of this store, shared with every other client
   * of the same store (another tab, worker or process), and releases it when `critical` settles.
   * The SDK holds such a lock around each read-modify-write of shared state (the outbox, a session
   * refresh, the client id), so that two clients of one store neither lose a queued record nor
   * both spend one rotating refresh token. Without it, only the clients of this JavaScript realm
   * that share the same storage object are coordinated (enough for one app in one realm).
   */
  lock?<T>(name: string, critical: () => Promise<T>): Promise<T>;
}

/**
 * In memory: for tests and short-lived processes. With `exactNumbers`, integers too long for a
 * double come back digit for digit (as `JSON.rawJSON` values; see ClientOptions.exactNumbers).
 */
export class MemoryStorage implements SyncStorage {
  readonly #values = new Map<string, string>();
  readonly #parse: (text: string) => unknown;

  constructor(options: { exactNumbers?: boolean } = {}) {
    this.#parse = options.exactNumbers ? parseJsonExact : parseJson;
  }

  async get<T>(key: string): Promise<T | undefined> {
    const text = this.#values.get(key);
    return text === undefined ? undefined : (this.#parse(text) as T);
  }

  async set(key: string, value: unknown): Promise<void> {
    this.#values.set(key, JSON.stringify(value));
  }

  async delete(key: string): Promise<void> {
    this.#values.delete(key);
  }
}

/**
 * Browser `localStorage` (or any Storage-like object), under a key prefix. Clients in other tabs of
 * the origin see the same values, so they are coordinated with Web Locks where the platform has them.
 */
export class WebStorage implements SyncStorage {
  readonly #storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;
  readonly #prefix: string;

  constructor(
    storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> = globalThis.localStorage,
    prefix = 'synk:',
  ) {
    this.#storage = storage;
    this.#prefix = prefix;
  }

  async get<T>(key: string): Promise<T | undefined> {
    const text = this.#storage.getItem(this.#prefix + key);
    return text === null ? undefined : (CorruptValueError.parse(text, parseJson, key) as T);
  }

  async set(key: string, value: unknown): Promise<void> {
    this.#storage.setItem(this.#prefix + key, JSON.stringify(value));
  }

  async delete(key: string): Promise<void> {
    this.#storage.removeItem(this.#prefix + key);
  }

  lock<T>(name: string, critical: () => Promise<T>): Promise<T> {
    return webLock(`synk-web-storage:${this.#prefix}${name}`, critical);
  }
}
