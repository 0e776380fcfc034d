import type { AppContext } from '../../app-context.ts';
import type { Route } from '../../http/routes.ts';
import { authHandlers } from './auth.handlers.ts';

export function authRoutes(ctx: AppContext): Route[] {
  const h = authHandlers(ctx);
  return [
    { operationId: 'login', method: 'post', path: '/auth/login', handler: h.login },
    { operationId: 'refreshToken', method: 'post', path: '/auth/refresh', handler: h.refreshToken },
    { operationId: 'logout', method: 'post', path: '/auth/logout', handler: h.logout },
  ];
}
