import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/core';
import { specPath } from '@synk/contract';
import type { Logger } from 'pino';
import { createApp } from './app.ts';
import type { AppContext } from './app-context.ts';
import type { Config } from './config.ts';
import { openDatabase } from './db/orm.ts';
import { loadOpenApiDocument } from './http/openapi.ts';
import { FileBlobStorage } from './lib/blob-storage.ts';
import { resolveBuildInfo } from './lib/build-info.ts';
import { removeStale } from './lib/files.ts';
import { loadSigningSecret } from './lib/secret.ts';
import { BlobLocks } from './modules/attachments/attachments.repository.ts';
import { AttachmentsService } from './modules/attachments/attachments.service.ts';
import { AuthService } from './modules/auth/auth.service.ts';
import { BundlesService } from './modules/bundles/bundles.service.ts';
import { ExportsService } from './modules/exports/exports.service.ts';
import { ChangeEvents } from './modules/sync/change-events.ts';
import { SqliteSyncStore } from './modules/sync/sqlite.store.ts';
import { SyncService } from './modules/sync/sync.service.ts';
import { UsersService } from './modules/users/users.service.ts';

export interface RunningServer {
  url: string;
  port: number;
  orm: MikroORM;
  context: AppContext;
  /** Stops accepting connections, lets in-flight requests finish (up to the shutdown timeout), closes the database. */
  close(): Promise<void>;
}

/**
 * Opens (and migrates) the database, loads the signing secret, builds the services and creates the
 * first administrator if there are no users yet.
 */
export async function createContext(
  config: Config,
  logger: Logger,
  clock: () => Date = () => new Date(),
): Promise<AppContext> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const orm = await openDatabase(config.database, logger);
  try {
    const secret = await loadSigningSecret(config.jwtSecret, config.dataDir);
    const auth = new AuthService({ orm, config, secret, clock });
    const users = new UsersService({ orm, config, auth, clock });
    await users.bootstrapAdmin(logger);
    const store =
      config.database.kind === 'sqlite'
        ? await SqliteSyncStore.open(orm)
        : new (await import('./modules/sync/postgres.store.ts')).PostgresSyncStore(config.database, (err) =>
            logger.warn({ err }, 'PostgreSQL connection lost'),
          );
    const bundles = new BundlesService({ orm, config, clock, logger });
    const changes = new ChangeEvents({
      readVersion: () => store.currentVersion(),
      pollMs: config.sync.eventsPollMs,
      heartbeatMs: config.sync.eventsHeartbeatMs,
      maxStreams: config.sync.eventsMaxStreams,
      clock,
      onError: (err, what) => logger.warn({ err }, what),
    });
    const sync = new SyncService({ store, config, clock, forms: bundles, changes });
    sync.startFlushingPulls(config.sync.clientStatusFlushMs, (err) =>
      logger.warn({ err }, 'could not write the devices’ pull status; kept for the next flush'),
    );
    const blobs = new FileBlobStorage(path.join(config.dataDir, 'attachments'));
    await removeStaleUploads(blobs, config, logger);
    const attachments = new AttachmentsService({
      index: store,
      blobs,
      locks: new BlobLocks(orm, config.database.kind),
      maxBytes: config.limits.attachmentBytes,
      clock,
      changes,
    });
    const build = resolveBuildInfo(config);
    return {
      config,
      orm,
      logger,
      clock,
      build,
      spec: loadOpenApiDocument(specPath),
      services: {
        auth,
        users,
        sync,
        attachments,
        bundles,
        exports: new ExportsService(store, path.join(config.dataDir, 'tmp', 'exports'), {
          concurrent: config.limits.concurrentExports,
          stallMs: config.limits.exportStallMs,
          maxColumns: config.limits.exportMaxColumns,
        }),
        changes,
        // Pulls held in memory are written before the store closes.
        close: async () => {
          changes.close();
          try {
            await sync.close();
          } finally {
            await store.close();
          }
        },
      },
    };
  } catch (err) {
    await orm.close();
    throw err;
  }
}

/**
 * Uploads are staged in temporary directories until they are stored; a crash leaves them there.
 * Only files untouched for an hour go: processes sharing DATA_DIR may be writing newer ones.
 */
const STALE_UPLOAD_MS = 60 * 60 * 1000;

async function removeStaleUploads(blobs: FileBlobStorage, config: Config, logger: Logger): Promise<void> {
  try {
    const [attachments, bundles] = await Promise.all([
      blobs.sweepStaged(STALE_UPLOAD_MS),
      removeStale(path.join(config.appBundlePath, '.tmp'), STALE_UPLOAD_MS),
    ]);
    if (attachments + bundles > 0)
      logger.info({ attachments, bundles }, 'removed temporary upload files left by an earlier run');
  } catch (err) {
    // Leftovers only waste space: not a reason to refuse to start.
    logger.warn({ err }, 'could not remove temporary upload files left by an earlier run');
  }
}

/** Releases the services' resources, then the database. */
export async function closeContext(context: AppContext): Promise<void> {
  try {
    await context.services.close();
  } finally {
    await context.orm.close();
  }
}

/** config → database (migrated) → app → listening server. Used by main.ts and by in-process tests. */
export async function startServer(
  config: Config,
  logger: Logger,
  clock?: () => Date,
): Promise<RunningServer> {
  const context = await createContext(config, logger, clock);
  const { orm } = context;
  const app = createApp(context);
  const server: Server = app.listen(config.port, config.host ?? '::');
  // Keep idle connections longer than clients and load balancers do (they commonly wait 60 s), so
  // the server never closes a kept-alive socket just as a client sends on it (a reset, not a retry).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  try {
    await once(server, 'listening');
  } catch (err) {
    await closeContext(context);
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  // The address to reach it at: a wildcard (every interface) is reached at localhost here.
  const host = config.host;
  const shownHost =
    host === undefined || host === '::' || host === '0.0.0.0'
      ? 'localhost'
      : host.includes(':')
        ? `[${host}]`
        : host;
  const url = `http://${shownHost}:${port}`;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Event streams never end by themselves: ended now, their connections close like idle ones.
      context.services.changes.close();
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      await closed;
      clearTimeout(timer);
      await closeContext(context);
    })();
    return closing;
  };
  return { url, port, orm, context, close };
}
