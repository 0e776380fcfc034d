/**
 * Whether `err` says the database cannot be reached (down, restarting, unreachable, or the
 * connection just dropped) rather than that the request or the server's code went wrong: such a
 * request is worth retrying shortly, so it is answered 503 with Retry-After, not 500.
 *
 * Recognised: a failed connect or name lookup (the server connects to nothing but its database),
 * PostgreSQL's connection exceptions (SQLSTATE class 08) and shutdown codes (57P01–57P03), and
 * node-postgres's own errors for a connection that ended under a query, and SQLite's SQLITE_BUSY
 * (another connection held the write lock for longer than this one waits: the SQLite push thread's
 * connection and the ORM's write one at a time). MikroORM's exceptions carry the driver's `code`
 * and `syscall`, or keep the driver's error as `cause`.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 4; depth++) {
    const { code, syscall, message, cause } = e as {
      code?: unknown;
      syscall?: unknown;
      message?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && (syscall === 'connect' || syscall === 'getaddrinfo')) return true;
    if (typeof code === 'string' && /^(08[0-9A-Z]{3}|57P0[123]|SQLITE_BUSY)$/.test(code)) return true;
    if (typeof message === 'string' && PG_CONNECTION_ENDED.test(message)) return true;
    e = cause;
  }
  return false;
}

/**
 * node-postgres's messages for a query on a connection that closed, and for a connection attempt
 * that ran out of time (`connectionTimeoutMillis`), in the client and in the pool (no codes of their own).
 */
const PG_CONNECTION_ENDED =
  /^(Connection terminated( unexpectedly| due to connection timeout)?|Client has encountered a connection error and is not queryable|timeout exceeded when trying to connect)$/;

/** Seconds a client is asked to wait before retrying while the database is unavailable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;
