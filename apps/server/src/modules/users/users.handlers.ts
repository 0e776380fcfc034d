import type { AppContext } from '../../app-context.ts';
import { principalOf } from '../../http/authenticate.ts';
import { type Handler, sendJson } from '../../http/routes.ts';
import type { Role } from './user.entity.ts';

type UsersOperation =
  | 'createUser'
  | 'listUsers'
  | 'deleteUser'
  | 'deleteUserLegacy'
  | 'updateUser'
  | 'resetPassword'
  | 'changePassword';

export function usersHandlers({ services: { users } }: AppContext): Record<UsersOperation, Handler> {
  const deleteUser: Handler = async (req, res) => {
    await users.delete(String(req.params.username));
    sendJson(res, 'deleteUser', 200, { message: 'User deleted successfully' });
  };
  return {
    async createUser(req, res) {
      const { username, password, role } = req.body as { username: string; password: string; role: string };
      const user = await users.create(username, password, role);
      sendJson(res, 'createUser', 201, {
        username: user.username,
        role: user.role,
        createdAt: user.createdAt,
      });
    },
    async listUsers(_req, res) {
      sendJson(res, 'listUsers', 200, await users.list());
    },
    deleteUser,
    deleteUserLegacy: deleteUser,
    async updateUser(req, res) {
      const { role } = req.body as { role: Role };
      sendJson(res, 'updateUser', 200, await users.setRole(String(req.params.username), role));
    },
    async resetPassword(req, res) {
      const { username, newPassword } = req.body as { username: string; newPassword: string };
      await users.resetPassword(username, newPassword);
      sendJson(res, 'resetPassword', 200, { message: 'Password reset successfully' });
    },
    async changePassword(req, res) {
      const body = req.body as { currentPassword?: string; oldPassword?: string; newPassword: string };
      await users.changePassword(
        principalOf(res),
        body.currentPassword ?? body.oldPassword,
        body.newPassword,
        req.ip ?? 'unknown',
      );
      sendJson(res, 'changePassword', 200, { message: 'Password changed successfully' });
    },
  };
}
