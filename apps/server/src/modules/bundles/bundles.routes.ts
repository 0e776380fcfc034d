import type { AppContext } from '../../app-context.ts';
import type { Route } from '../../http/routes.ts';
import { bundlesHandlers } from './bundles.handlers.ts';

export function bundlesRoutes(ctx: AppContext): Route[] {
  const h = bundlesHandlers(ctx);
  return [
    {
      operationId: 'getAppBundleChanges',
      method: 'get',
      path: '/app-bundle/changes',
      handler: h.getAppBundleChanges,
    },
    {
      operationId: 'getAppBundleManifest',
      method: 'get',
      path: '/app-bundle/manifest',
      handler: h.getAppBundleManifest,
    },
    {
      operationId: 'downloadAppBundleFile',
      method: 'get',
      path: '/app-bundle/download/{path}',
      handler: h.downloadAppBundleFile,
    },
    {
      operationId: 'downloadAppBundleZip',
      method: 'get',
      path: '/app-bundle/download-zip',
      handler: h.downloadAppBundleZip,
    },
    {
      operationId: 'getAppBundleVersions',
      method: 'get',
      path: '/app-bundle/versions',
      handler: h.getAppBundleVersions,
    },
    { operationId: 'pushAppBundle', method: 'post', path: '/app-bundle/push', handler: h.pushAppBundle },
    {
      operationId: 'switchAppBundleVersion',
      method: 'post',
      path: '/app-bundle/switch/{version}',
      handler: h.switchAppBundleVersion,
    },
  ];
}
