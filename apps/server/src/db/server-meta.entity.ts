import { defineEntity, p } from '@mikro-orm/core';

/** Key/value facts about this database, e.g. `installation_id`, which changes only when the database is recreated. */
export const ServerMeta = defineEntity({
  name: 'ServerMeta',
  tableName: 'server_meta',
  properties: {
    key: p.string().length(64).primary(),
    value: p.text(),
  },
});
