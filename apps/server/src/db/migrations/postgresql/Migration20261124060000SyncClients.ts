import { Migration } from '@mikro-orm/migrations';

/**
 * Per-device sync status for administrators (spec §4.4): one row per client_id. Times are unix
 * milliseconds, so that "never move backwards" is a plain numeric max whatever the collation.
 * `change_cutoff` is the one handed to the latest pull (by `last_pull_at`), not the highest: a
 * device that starts over from 0 is behind again.
 * client_id sorts by its bytes (collation "C"), as SQLite sorts it: pages follow one order on both.
 */
export class Migration20261124060000SyncClients extends Migration {
  override name = 'Migration20261124060000SyncClients';

  override up(): void {
    this.addSql(
      'create table "sync_clients" ("client_id" text collate "C" not null primary key, "username" text not null, "first_seen_at" bigint not null, "last_seen_at" bigint not null, "last_push_at" bigint null, "last_pull_at" bigint null, "highest_pushed_version" bigint null, "change_cutoff" bigint null, "push_count" bigint not null default 0, "records_accepted" bigint not null default 0)',
    );
  }

  override down(): void {
    this.addSql('drop table "sync_clients"');
  }
}
