import type { AppContext } from '../../app-context.ts';
import type { Handler } from '../../http/routes.ts';
import { sendJson } from '../../http/routes.ts';
import { checkHealth } from './health.service.ts';

export function healthHandlers(ctx: AppContext): { getHealth: Handler; headHealth: Handler } {
  const probe = () =>
    checkHealth({
      orm: ctx.orm,
      dataDir: ctx.config.dataDir,
      minFreeBytes: ctx.config.limits.healthMinFreeBytes,
    });

  const getHealth: Handler = async (_req, res) => {
    const report = await probe();
    res.setHeader('Cache-Control', 'no-store');
    const body = { ...report, timestamp: ctx.clock().toISOString(), version: ctx.build.version };
    if (report.status === 'ok') sendJson(res, 'getHealth', 200, body);
    else sendJson(res, 'getHealth', 503, body);
  };
  // HEAD answers with GET's status and headers (Content-Type, Content-Length; RFC 9110 §9.3.2):
  // Node sends no body in reply to HEAD.
  return { getHealth, headHealth: getHealth };
}
