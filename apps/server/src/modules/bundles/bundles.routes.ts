import { pending, type Route } from '../../http/routes.ts';

// Implemented by the app bundles issue; until then every operation answers 501 problem+json.
export function bundlesRoutes(): Route[] {
  return [
    pending('getAppBundleChanges', 'get', '/app-bundle/changes'),
    pending('getAppBundleManifest', 'get', '/app-bundle/manifest'),
    pending('downloadAppBundleFile', 'get', '/app-bundle/download/{path}'),
    pending('downloadAppBundleZip', 'get', '/app-bundle/download-zip'),
    pending('getAppBundleVersions', 'get', '/app-bundle/versions'),
    pending('pushAppBundle', 'post', '/app-bundle/push'),
    pending('switchAppBundleVersion', 'post', '/app-bundle/switch/{version}'),
  ];
}
