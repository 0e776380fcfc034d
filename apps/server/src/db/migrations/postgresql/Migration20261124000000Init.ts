import { Migration } from '@mikro-orm/migrations';

export class Migration20261124000000Init extends Migration {
  override name = 'Migration20261124000000Init';

  override up(): void {
    this.addSql('create table server_meta (key varchar(64) not null primary key, value text not null)');
    this.addSql("insert into server_meta (key, value) values ('installation_id', gen_random_uuid()::text)");
  }

  override down(): void {
    this.addSql('drop table server_meta');
  }
}
