/**
 * Committed migrations, one list per dialect, listed explicitly (no file discovery) so the same code
 * runs from TypeScript sources and from a bundle. Append new migrations at the end of both lists.
 */
import { Migration20261124000000Init as PgInit } from './postgresql/Migration20261124000000Init.ts';
import { Migration20261124010000Auth as PgAuth } from './postgresql/Migration20261124010000Auth.ts';
import { Migration20261124020000Sync as PgSync } from './postgresql/Migration20261124020000Sync.ts';
import { Migration20261124030000Attachments as PgAttachments } from './postgresql/Migration20261124030000Attachments.ts';
import { Migration20261124040000Bundles as PgBundles } from './postgresql/Migration20261124040000Bundles.ts';
import { Migration20261124060000SyncClients as PgSyncClients } from './postgresql/Migration20261124060000SyncClients.ts';
import { Migration20261125000000TombstonePurge as PgTombstonePurge } from './postgresql/Migration20261125000000TombstonePurge.ts';
import { Migration20261124000000Init as SqliteInit } from './sqlite/Migration20261124000000Init.ts';
import { Migration20261124010000Auth as SqliteAuth } from './sqlite/Migration20261124010000Auth.ts';
import { Migration20261124020000Sync as SqliteSync } from './sqlite/Migration20261124020000Sync.ts';
import { Migration20261124030000Attachments as SqliteAttachments } from './sqlite/Migration20261124030000Attachments.ts';
import { Migration20261124040000Bundles as SqliteBundles } from './sqlite/Migration20261124040000Bundles.ts';
import { Migration20261124050000PullPageBytes as SqlitePullPageBytes } from './sqlite/Migration20261124050000PullPageBytes.ts';
import { Migration20261124060000SyncClients as SqliteSyncClients } from './sqlite/Migration20261124060000SyncClients.ts';
import { Migration20261125000000TombstonePurge as SqliteTombstonePurge } from './sqlite/Migration20261125000000TombstonePurge.ts';

export const sqliteMigrations = [
  SqliteInit,
  SqliteAuth,
  SqliteSync,
  SqliteAttachments,
  SqliteBundles,
  SqlitePullPageBytes,
  SqliteSyncClients,
  SqliteTombstonePurge,
];
export const postgresqlMigrations = [
  PgInit,
  PgAuth,
  PgSync,
  PgAttachments,
  PgBundles,
  PgSyncClients,
  PgTombstonePurge,
];
