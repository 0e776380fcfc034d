import type { AppContext } from '../../app-context.ts';
import type { Route } from '../../http/routes.ts';
import { metaHandlers } from './meta.handlers.ts';

export function metaRoutes(ctx: AppContext): Route[] {
  const h = metaHandlers(ctx);
  return [
    { operationId: 'getVersion', method: 'get', path: '/version', handler: h.getVersion },
    { operationId: 'getApiVersions', method: 'get', path: '/api/versions', handler: h.getApiVersions },
    { operationId: 'getOpenApiSpec', method: 'get', path: '/openapi.yaml', handler: h.getOpenApiSpec },
    { operationId: 'getApiDocs', method: 'get', path: '/docs', handler: h.getApiDocs },
  ];
}
