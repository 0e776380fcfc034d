import { pending, type Route } from '../../http/routes.ts';

// Implemented by the auth and users issue; until then every operation answers 501 problem+json.
export function usersRoutes(): Route[] {
  return [
    pending('createUser', 'post', '/users/create'),
    pending('listUsers', 'get', '/users'),
    pending('deleteUser', 'delete', '/users/{username}'),
    pending('updateUser', 'patch', '/users/{username}'),
    pending('deleteUserLegacy', 'delete', '/users/delete/{username}'),
    pending('resetPassword', 'post', '/users/reset-password'),
    pending('changePassword', 'post', '/users/change-password'),
  ];
}
