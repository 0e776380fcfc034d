import type { AppContext } from '../../app-context.ts';
import type { Route } from '../../http/routes.ts';
import { syncEventsHandler } from './events.handlers.ts';
import { syncHandlers } from './sync.handlers.ts';

export function syncRoutes(ctx: AppContext): Route[] {
  const h = syncHandlers(ctx);
  // Served by the sync store on its own connection: no ORM context needed.
  return [
    {
      operationId: 'syncPull',
      method: 'post',
      path: '/sync/pull',
      handler: h.syncPull,
      ormContext: false,
      largeBody: true,
    },
    {
      operationId: 'syncPush',
      method: 'post',
      path: '/sync/push',
      handler: h.syncPush,
      ormContext: false,
      largeBody: true,
      exactNumbers: true,
    },
    {
      operationId: 'listConflicts',
      method: 'get',
      path: '/sync/conflicts',
      handler: h.listConflicts,
      ormContext: false,
    },
    {
      operationId: 'purgeTombstones',
      method: 'post',
      path: '/sync/tombstones/purge',
      handler: h.purgeTombstones,
      ormContext: false,
    },
    {
      operationId: 'listSyncClients',
      method: 'get',
      path: '/sync/clients',
      handler: h.listSyncClients,
      ormContext: false,
    },
    {
      operationId: 'syncEvents',
      method: 'get',
      path: '/sync/events',
      handler: syncEventsHandler(ctx),
      ormContext: false,
    },
  ];
}
