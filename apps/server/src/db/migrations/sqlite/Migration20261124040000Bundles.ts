import { Migration } from '@mikro-orm/migrations';

export class Migration20261124040000Bundles extends Migration {
  override name = 'Migration20261124040000Bundles';

  override up(): void {
    this.addSql(
      'create table `app_bundle_versions` (`version` text not null primary key, `created_at` datetime not null, `pushed_by` text not null, `manifest` text not null)',
    );
    this.addSql(
      'create table `app_bundle_state` (`id` integer not null primary key check (`id` = 1), `active_version` text null)',
    );
    this.addSql('insert into `app_bundle_state` (`id`, `active_version`) values (1, null)');
  }

  override down(): void {
    this.addSql('drop table `app_bundle_state`');
    this.addSql('drop table `app_bundle_versions`');
  }
}
