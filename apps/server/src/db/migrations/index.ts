/**
 * Committed migrations, one list per dialect, listed explicitly (no file discovery) so the same code
 * runs from TypeScript sources and from a bundle. Append new migrations at the end of both lists.
 */
import { Migration20261124000000Init as PgInit } from './postgresql/Migration20261124000000Init.ts';
import { Migration20261124000000Init as SqliteInit } from './sqlite/Migration20261124000000Init.ts';

export const sqliteMigrations = [SqliteInit];
export const postgresqlMigrations = [PgInit];
