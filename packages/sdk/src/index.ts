export type { Change, ChangesOptions } from './changes.ts';
export {
  type ClientOptions,
  type Conflict,
  createClient,
  type LogoutResult,
  type Observation,
  type PullOptions,
  type PullPage,
  type PushObservation,
  type PushReport,
  type PushResponse,
  type PushWarning,
  type RecordInput,
  type RefusedBatch,
  type SyncClient,
  type SyncHandlers,
  type SyncReport,
  type Tokens,
} from './client.ts';
export type { ConflictEntry, ConflictPage, ConflictPageOptions } from './conflicts.ts';
export { ApiError, CorruptValueError, NetworkError, type Problem } from './errors.ts';
export type { SyncEvents } from './events.ts';
export { type FailedDownload, type LocalFiles, multipartBody } from './files.ts';
export type { components, operations, paths } from './generated/schema.ts';
export { IndexedDBStorage } from './indexeddb.ts';
export type { DeadLetter } from './outbox.ts';
export type { ResyncMark } from './resync.ts';
export { MemoryStorage, type SyncStorage, WebStorage } from './storage.ts';
export type { SyncClientPage, SyncClientPagesOptions, SyncClientStatus } from './sync-clients.ts';
export { DEFAULT_RETRY, isRetryable, type RequestSource, type RetryOptions } from './transport.ts';
