import type { AppContext } from '../../app-context.ts';
import { principalOf } from '../../http/authenticate.ts';
import { type Handler, sendJson } from '../../http/routes.ts';

export function authHandlers({
  services: { auth },
}: AppContext): Record<'login' | 'refreshToken' | 'logout', Handler> {
  return {
    async login(req, res) {
      const { username, password } = req.body as { username: string; password: string };
      const pair = await auth.login(username, password, req.ip ?? 'unknown');
      res.setHeader('Cache-Control', 'no-store');
      sendJson(res, 'login', 200, pair);
    },
    async refreshToken(req, res) {
      const { refreshToken } = req.body as { refreshToken: string };
      const pair = await auth.refresh(refreshToken, req.header('idempotency-key'));
      res.setHeader('Cache-Control', 'no-store');
      sendJson(res, 'refreshToken', 200, pair);
    },
    async logout(req, res) {
      const { refreshToken } = (req.body ?? {}) as { refreshToken?: string };
      await auth.logout(principalOf(res), refreshToken);
      sendJson(res, 'logout', 200, { message: 'Logged out successfully' });
    },
  };
}
