import { ConfigError, environmentWithDotEnv, loadConfig } from './config.ts';
import { unsupportedNode } from './lib/node-version.ts';

/**
 * `npm run backup -- <directory>`: copies the server's data (SQLite) into a new directory that can
 * be used as a DATA_DIR, while the server runs. Reads the same configuration as the server.
 */
async function main(): Promise<number> {
  const target = process.argv[2];
  if (!target || process.argv.length > 3 || target.startsWith('-')) {
    process.stderr.write('usage: npm run backup -- <new directory>\n');
    return 2;
  }
  const unsupported = unsupportedNode(process.versions.node);
  if (unsupported) {
    process.stderr.write(`${unsupported}\n`);
    return 1;
  }
  // Loaded once the Node.js version is known to be the one its native parts are built for.
  const { BackupError, backupData } = await import('./db/backup.ts');
  process.umask(0o077); // the copy holds password hashes and every record, as the original does
  try {
    const config = loadConfig(environmentWithDotEnv(process.env, process.cwd()));
    const summary = await backupData(config, target);
    const mib = (summary.attachmentBytes / 2 ** 20).toFixed(1);
    process.stdout.write(
      `Backed up into ${summary.directory}: ${summary.records} records, ${summary.attachments} attachments ` +
        `(${mib} MiB), app bundle versions ${summary.bundleVersions.join(', ') || 'none'}` +
        `${summary.activeBundle ? ` (active ${summary.activeBundle})` : ''}.\n` +
        `Restore: stop the server, then start it with DATA_DIR=${summary.directory} (or move the directory into place).\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof BackupError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main();
