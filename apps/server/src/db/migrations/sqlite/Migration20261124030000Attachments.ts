import { Migration } from '@mikro-orm/migrations';

export class Migration20261124030000Attachments extends Migration {
  override name = 'Migration20261124030000Attachments';

  override up(): void {
    // One row per attachment holding its latest operation (download = live, delete = tombstone),
    // versioned from the same global change counter as records.
    this.addSql(
      'create table `attachments` (`attachment_id` text not null primary key, `hash` text not null, `size` integer not null, `content_type` text not null, `deleted` integer not null default 0, `version` integer not null, `created_at` text not null, `updated_at` text not null)',
    );
    this.addSql('create unique index `attachments_version_unique` on `attachments` (`version`)');
    this.addSql('create index `attachments_hash_index` on `attachments` (`hash`)');
  }

  override down(): void {
    this.addSql('drop table `attachments`');
  }
}
