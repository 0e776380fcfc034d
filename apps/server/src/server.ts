import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MikroORM } from '@mikro-orm/core';
import { specPath } from '@synk/contract';
import type { Logger } from 'pino';
import { createApp } from './app.ts';
import type { AppContext } from './app-context.ts';
import type { Config } from './config.ts';
import { openDatabase } from './db/orm.ts';
import { loadOpenApiDocument } from './http/openapi.ts';
import { resolveBuildInfo } from './lib/build-info.ts';

export interface RunningServer {
  url: string;
  port: number;
  orm: MikroORM;
  context: AppContext;
  /** Stops accepting connections, lets in-flight requests finish (up to the shutdown timeout), closes the database. */
  close(): Promise<void>;
}

/** Opens (and migrates) the database and gathers what handlers depend on. */
export async function createContext(
  config: Config,
  logger: Logger,
  clock: () => Date = () => new Date(),
): Promise<AppContext> {
  mkdirSync(config.dataDir, { recursive: true });
  const orm = await openDatabase(config.database, logger);
  return { config, orm, logger, clock, build: resolveBuildInfo(config), spec: loadOpenApiDocument(specPath) };
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
  try {
    await once(server, 'listening');
  } catch (err) {
    await orm.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://localhost:${port}`;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      await closed;
      clearTimeout(timer);
      await orm.close();
    })();
    return closing;
  };
  return { url, port, orm, context, close };
}
