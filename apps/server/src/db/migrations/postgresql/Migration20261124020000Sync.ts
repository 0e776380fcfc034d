import { Migration } from '@mikro-orm/migrations';

export class Migration20261124020000Sync extends Migration {
  override name = 'Migration20261124020000Sync';

  override up(): void {
    this.addSql(
      'create table "observations" ("observation_id" text not null primary key, "form_type" text not null, "form_version" text null, "data" text not null, "created_at" text null, "updated_at" text null, "synced_at" text not null, "deleted" boolean not null default false, "version" bigint not null, "geolocation" text null, "hash" text not null, "last_modified_by" text not null, "origin_client_id" text not null)',
    );
    this.addSql('create unique index "observations_version_unique" on "observations" ("version")');
    this.addSql(
      'create index "observations_form_type_version_index" on "observations" ("form_type", "version")',
    );
    // The one global change counter (spec §4.2): a single row, locked by each push until it commits.
    this.addSql(
      'create table "sync_counter" ("id" int not null primary key check ("id" = 1), "value" bigint not null)',
    );
    this.addSql('insert into "sync_counter" ("id", "value") values (1, 0)');
    this.addSql(
      'create table "sync_transmissions" ("client_id" text not null, "transmission_id" text not null, "body_hash" text not null, "response" text not null, "created_at" bigint not null, "expires_at" bigint not null, primary key ("client_id", "transmission_id"))',
    );
    this.addSql('create index "sync_transmissions_expires_at_index" on "sync_transmissions" ("expires_at")');
    this.addSql(
      'create table "sync_conflicts" ("id" bigserial primary key, "observation_id" text not null, "form_type" text not null, "policy" text not null, "base_version" bigint not null, "server_version" bigint not null, "client_id" text not null, "username" text not null, "transmission_id" text not null, "detected_at" text not null, "incoming" text not null, "server" text not null)',
    );
    this.addSql('create index "sync_conflicts_observation_id_index" on "sync_conflicts" ("observation_id")');
  }

  override down(): void {
    for (const table of ['sync_conflicts', 'sync_transmissions', 'sync_counter', 'observations']) {
      this.addSql(`drop table "${table}"`);
    }
  }
}
