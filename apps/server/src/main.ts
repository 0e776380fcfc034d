import { ConfigError, environmentWithDotEnv, loadConfig } from './config.ts';
import { createLogger } from './lib/logger.ts';
import { unsupportedNode } from './lib/node-version.ts';
import type { RunningServer } from './server.ts';

async function main(): Promise<void> {
  // Before the server's modules (and their native parts) are loaded: see unsupportedNode.
  const unsupported = unsupportedNode(process.versions.node);
  if (unsupported) {
    process.stderr.write(`${unsupported}\n`);
    process.exit(1);
  }
  const { startServer } = await import('./server.ts');
  // Everything the server creates (the data directory, the database and its WAL, secrets,
  // attachments, exports' temporary files) is its own: 0700 directories, 0600 files. Under the
  // usual umask of 022 the database (password and refresh-token hashes, every record) was
  // readable by every local user.
  process.umask(0o077);
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(environmentWithDotEnv(process.env, process.cwd()));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  // Installed before listening, so a signal that arrives as soon as the server is up is never missed.
  let server: RunningServer | undefined;
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    (server?.close() ?? Promise.resolve()).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  server = await startServer(config, logger);
  if (stopping) {
    await server.close();
    return;
  }
  logger.info(
    { url: server.url, database: config.database.kind, dataDir: config.dataDir },
    `synk server listening on ${server.url}`,
  );
}

main().catch((err: unknown) => {
  createLogger('error').fatal({ err }, 'server failed to start');
  process.exit(1);
});
