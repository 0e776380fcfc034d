import type { AppContext } from '../../app-context.ts';
import type { Route } from '../../http/routes.ts';
import { healthHandlers } from './health.handlers.ts';

export function healthRoutes(ctx: AppContext): Route[] {
  const h = healthHandlers(ctx);
  return [
    { operationId: 'getHealth', method: 'get', path: '/health', handler: h.getHealth },
    { operationId: 'headHealth', method: 'head', path: '/health', handler: h.headHealth },
  ];
}
