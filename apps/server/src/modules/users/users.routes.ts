import type { AppContext } from '../../app-context.ts';
import type { Route } from '../../http/routes.ts';
import { usersHandlers } from './users.handlers.ts';

export function usersRoutes(ctx: AppContext): Route[] {
  const h = usersHandlers(ctx);
  return [
    { operationId: 'createUser', method: 'post', path: '/users/create', handler: h.createUser },
    // The Synkronus Go CLI creates users with POST /users (its server took both paths).
    { operationId: 'createUserAlias', method: 'post', path: '/users', handler: h.createUser },
    { operationId: 'listUsers', method: 'get', path: '/users', handler: h.listUsers },
    { operationId: 'deleteUser', method: 'delete', path: '/users/{username}', handler: h.deleteUser },
    { operationId: 'updateUser', method: 'patch', path: '/users/{username}', handler: h.updateUser },
    {
      operationId: 'deleteUserLegacy',
      method: 'delete',
      path: '/users/delete/{username}',
      handler: h.deleteUserLegacy,
    },
    { operationId: 'resetPassword', method: 'post', path: '/users/reset-password', handler: h.resetPassword },
    {
      operationId: 'changePassword',
      method: 'post',
      path: '/users/change-password',
      handler: h.changePassword,
    },
  ];
}
