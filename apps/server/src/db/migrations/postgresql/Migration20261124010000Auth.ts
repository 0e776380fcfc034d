import { Migration } from '@mikro-orm/migrations';

export class Migration20261124010000Auth extends Migration {
  override name = 'Migration20261124010000Auth';

  override up(): void {
    this.addSql(
      `create table "users" ("id" varchar(36) not null primary key, "username" varchar(64) not null, "password_hash" text not null, "role" varchar(16) not null check ("role" in ('read-only', 'read-write', 'admin')), "token_generation" int not null default 0, "created_at" timestamptz not null, "updated_at" timestamptz not null)`,
    );
    this.addSql('alter table "users" add constraint "users_username_unique" unique ("username")');
    this.addSql(
      'create table "auth_sessions" ("id" varchar(36) not null primary key, "user_id" varchar(36) not null references "users" ("id") on delete cascade, "created_at" timestamptz not null, "expires_at" timestamptz not null, "revoked_at" timestamptz null, "revoked_reason" varchar(32) null)',
    );
    this.addSql('create index "auth_sessions_user_id_index" on "auth_sessions" ("user_id")');
    this.addSql(
      'create table "refresh_tokens" ("token_hash" varchar(64) not null primary key, "session_id" varchar(36) not null references "auth_sessions" ("id") on delete cascade, "created_at" timestamptz not null, "expires_at" timestamptz not null, "used_at" timestamptz null)',
    );
    this.addSql('create index "refresh_tokens_session_id_index" on "refresh_tokens" ("session_id")');
    this.addSql(
      'create table "login_throttle" ("key" varchar(200) not null primary key, "failures" int not null, "window_started_at" timestamptz not null)',
    );
  }

  override down(): void {
    this.addSql('drop table "login_throttle"');
    this.addSql('drop table "refresh_tokens"');
    this.addSql('drop table "auth_sessions"');
    this.addSql('drop table "users"');
  }
}
