import type { MikroORM } from '@mikro-orm/core';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { OpenApiDocument } from './http/openapi.ts';
import type { AttachmentsService } from './modules/attachments/attachments.service.ts';
import type { AuthService } from './modules/auth/auth.service.ts';
import type { BundlesService } from './modules/bundles/bundles.service.ts';
import type { ExportsService } from './modules/exports/exports.service.ts';
import type { ChangeEvents } from './modules/sync/change-events.ts';
import type { SyncService } from './modules/sync/sync.service.ts';
import type { UsersService } from './modules/users/users.service.ts';

export interface BuildInfo {
  /** This server's version (apps/server/package.json). */
  version: string;
  commit: string;
  buildTime: string;
}

/** The domain services, built once per app so their caches are shared by every request. */
export interface Services {
  auth: AuthService;
  users: UsersService;
  sync: SyncService;
  attachments: AttachmentsService;
  bundles: BundlesService;
  exports: ExportsService;
  /** The "changes available" streams of `GET /sync/events`. */
  changes: ChangeEvents;
  /** Releases what the services hold (connection pools); the ORM is closed separately. */
  close(): Promise<void>;
}

/** Everything a request handler may depend on; built by createContext (server.ts) and passed to createApp. */
export interface AppContext {
  config: Config;
  orm: MikroORM;
  logger: Logger;
  clock: () => Date;
  build: BuildInfo;
  spec: OpenApiDocument;
  services: Services;
}
