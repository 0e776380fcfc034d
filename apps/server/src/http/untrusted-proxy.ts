import type { RequestHandler } from 'express';
import type { Logger } from 'pino';

/**
 * Warns once when requests arrive through a proxy the server does not trust: they carry
 * X-Forwarded-For while TRUST_PROXY is off. Every client then has the proxy's address, and the
 * login throttle counts them all as one: LOGIN_MAX_FAILURES_PER_ADDRESS failed logins from anyone
 * lock every user out, and LOGIN_MAX_FAILURES_PER_USER of one username lock it out everywhere.
 */
export function untrustedProxyWarning(trustProxy: unknown, logger: Logger): RequestHandler {
  let warned = trustProxy !== false;
  return (req, _res, next) => {
    if (!warned && req.headers['x-forwarded-for'] !== undefined) {
      warned = true;
      logger.warn(
        { proxy: req.socket.remoteAddress },
        'requests arrive through a proxy (X-Forwarded-For) but TRUST_PROXY is off: every client has the proxy’s address, so the login throttle counts them as one client (failed logins of a few lock everyone out); set TRUST_PROXY to the proxy’s address',
      );
    }
    next();
  };
}
