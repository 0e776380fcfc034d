import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/core';
import { RequestContext } from '@mikro-orm/core';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { ResolvedOperation } from './operations.ts';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'node:http' {
  interface IncomingMessage {
    /** The request id (X-Request-Id), set by requestLogging. */
    id?: string;
    /** A logger bound to this request (`req: {id, method, url}`), set by requestLogging. */
    log?: Logger;
  }
}

/**
 * Logs one line per request with its id, echoing the client's `X-Request-Id` when it is sane: the
 * lines pino-http writes (`request completed` / `request errored`, with `req`, `res`,
 * `responseTime`), without its per-request costs: every request's line at info (spec §0.7: its id
 * in the response and in the log line), a failed one's at error; at `LOG_LEVEL=warn` or above only
 * failures are logged, and the request's child logger is only built when something is.
 */
export function requestLogging(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const sent = req.headers['x-request-id'];
    const id = typeof sent === 'string' && SANE_REQUEST_ID.test(sent) ? sent : randomUUID();
    res.setHeader('X-Request-Id', id);
    req.id = id;
    const bindings = { req: { id, method: req.method, url: req.url } };
    let child: Logger | undefined;
    const requestLogger = () => {
      child ??= logger.child(bindings);
      return child;
    };
    Object.defineProperty(req, 'log', { configurable: true, enumerable: false, get: requestLogger });
    const start = Date.now();
    const done = (err?: unknown) => {
      res.off('close', done);
      res.off('finish', done);
      res.off('error', done);
      const status = res.statusCode;
      const failure = err ?? (status >= 500 ? new Error(`failed with status code ${status}`) : undefined);
      const level = failure ? 'error' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      const fields = { res: { statusCode: status }, responseTime: Date.now() - start };
      if (failure) requestLogger().error({ ...fields, err: failure }, 'request errored');
      else requestLogger().info(fields, res.writableEnded ? 'request completed' : 'request aborted');
    };
    res.on('close', done);
    res.on('finish', done);
    res.on('error', done);
    next();
  };
}

/**
 * One EntityManager fork per request, reachable through `orm.em` inside the request; none for the
 * operations listed in `withoutOrm`.
 */
export function ormRequestContext(
  orm: MikroORM,
  withoutOrm: ReadonlySet<string> = new Set(),
): RequestHandler {
  return (_req, res, next) => {
    const operation = res.locals.operation as ResolvedOperation | undefined;
    if (operation && withoutOrm.has(operation.operationId)) next();
    else RequestContext.create(orm.em, next);
  };
}
