import { Migration } from '@mikro-orm/migrations';

export class Migration20261124040000Bundles extends Migration {
  override name = 'Migration20261124040000Bundles';

  override up(): void {
    this.addSql(
      'create table "app_bundle_versions" ("version" varchar(16) not null primary key, "created_at" timestamptz not null, "pushed_by" varchar(64) not null, "manifest" text not null)',
    );
    this.addSql(
      'create table "app_bundle_state" ("id" int not null primary key check ("id" = 1), "active_version" varchar(16) null)',
    );
    this.addSql('insert into "app_bundle_state" ("id", "active_version") values (1, null)');
  }

  override down(): void {
    this.addSql('drop table "app_bundle_state"');
    this.addSql('drop table "app_bundle_versions"');
  }
}
