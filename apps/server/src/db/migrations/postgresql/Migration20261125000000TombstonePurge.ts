import { Migration } from '@mikro-orm/migrations';

/**
 * Tombstone purge (spec §4.4). The repository's `generation` (+1 per purge that removed anything)
 * and `purged_through` (the highest version of any purged tombstone) live beside the change counter:
 * a pull reads them with the counter, in the same statement, and a purge updates them holding the
 * counter's row lock, as a push does. The partial index lets a purge find old tombstones without
 * reading the live records.
 */
export class Migration20261125000000TombstonePurge extends Migration {
  override name = 'Migration20261125000000TombstonePurge';

  override up(): void {
    this.addSql(
      'alter table "sync_counter" add column "generation" bigint not null default 0, add column "purged_through" bigint not null default 0',
    );
    this.addSql(
      'create index "observations_tombstone_synced_at_index" on "observations" ("synced_at") where "deleted"',
    );
  }

  override down(): void {
    this.addSql('drop index "observations_tombstone_synced_at_index"');
    this.addSql('alter table "sync_counter" drop column "purged_through", drop column "generation"');
  }
}
