import { pending, type Route } from '../../http/routes.ts';

// Implemented by the record sync issue; until then every operation answers 501 problem+json.
export function syncRoutes(): Route[] {
  return [
    pending('syncPull', 'post', '/sync/pull'),
    pending('syncPush', 'post', '/sync/push'),
    pending('listConflicts', 'get', '/sync/conflicts'),
  ];
}
