import { Migration } from '@mikro-orm/migrations';

/**
 * Per-device sync status for administrators (spec §4.4): one row per client_id. Times are unix
 * milliseconds, so that "never move backwards" is a plain numeric max whatever the collation.
 * `change_cutoff` is the one handed to the latest pull (by `last_pull_at`), not the highest: a
 * device that starts over from 0 is behind again.
 */
export class Migration20261124060000SyncClients extends Migration {
  override name = 'Migration20261124060000SyncClients';

  override up(): void {
    this.addSql(
      'create table `sync_clients` (`client_id` text not null primary key, `username` text not null, `first_seen_at` integer not null, `last_seen_at` integer not null, `last_push_at` integer null, `last_pull_at` integer null, `highest_pushed_version` integer null, `change_cutoff` integer null, `push_count` integer not null default 0, `records_accepted` integer not null default 0)',
    );
  }

  override down(): void {
    this.addSql('drop table `sync_clients`');
  }
}
