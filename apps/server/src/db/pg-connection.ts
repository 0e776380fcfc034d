/** The PostgreSQL settings of a server: where the database is, and how long a connection attempt may take. */
export interface PostgresTarget {
  url: string;
  connectTimeoutMs: number;
}

/**
 * What every PostgreSQL connection of the server is opened with: the ORM's pool, the sync store's
 * and the migration lock's. A database host that stops answering (a failover address that leads
 * nowhere, a frozen server) fails a connection attempt after `connectTimeoutMs` (the request is
 * answered 503) instead of holding the request until its client gives up; TCP keep-alive notices a
 * connection whose peer vanished without closing it.
 */
export function pgConnectionOptions(target: PostgresTarget) {
  return { connectionString: target.url, connectionTimeoutMillis: target.connectTimeoutMs, keepAlive: true };
}
