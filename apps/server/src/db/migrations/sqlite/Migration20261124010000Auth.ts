import { Migration } from '@mikro-orm/migrations';

export class Migration20261124010000Auth extends Migration {
  override name = 'Migration20261124010000Auth';

  override up(): void {
    this.addSql(
      "create table `users` (`id` text not null primary key, `username` text not null, `password_hash` text not null, `role` text not null check (`role` in ('read-only', 'read-write', 'admin')), `token_generation` integer not null default 0, `created_at` datetime not null, `updated_at` datetime not null)",
    );
    this.addSql('create unique index `users_username_unique` on `users` (`username`)');
    this.addSql(
      'create table `auth_sessions` (`id` text not null primary key, `user_id` text not null references `users` (`id`) on delete cascade, `created_at` datetime not null, `expires_at` datetime not null, `revoked_at` datetime null, `revoked_reason` text null)',
    );
    this.addSql('create index `auth_sessions_user_id_index` on `auth_sessions` (`user_id`)');
    this.addSql(
      'create table `refresh_tokens` (`token_hash` text not null primary key, `session_id` text not null references `auth_sessions` (`id`) on delete cascade, `created_at` datetime not null, `expires_at` datetime not null, `used_at` datetime null)',
    );
    this.addSql('create index `refresh_tokens_session_id_index` on `refresh_tokens` (`session_id`)');
    this.addSql(
      'create table `login_throttle` (`key` text not null primary key, `failures` integer not null, `window_started_at` datetime not null)',
    );
  }

  override down(): void {
    this.addSql('drop table `login_throttle`');
    this.addSql('drop table `refresh_tokens`');
    this.addSql('drop table `auth_sessions`');
    this.addSql('drop table `users`');
  }
}
