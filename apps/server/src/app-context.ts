import type { MikroORM } from '@mikro-orm/core';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { OpenApiDocument } from './http/openapi.ts';

export interface BuildInfo {
  /** This server's version (apps/server/package.json). */
  version: string;
  commit: string;
  buildTime: string;
}

/** Everything a request handler may depend on; built by main.ts (or a test) and passed to createApp. */
export interface AppContext {
  config: Config;
  orm: MikroORM;
  logger: Logger;
  clock: () => Date;
  build: BuildInfo;
  spec: OpenApiDocument;
}
