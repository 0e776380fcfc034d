/** What tests and tools outside this package may use: build and start a server in-process. */

export { createApp } from './app.ts';
export type { AppContext } from './app-context.ts';
export { type Config, ConfigError, loadConfig } from './config.ts';
export { createLogger } from './lib/logger.ts';
export { closeContext, createContext, type RunningServer, startServer } from './server.ts';
