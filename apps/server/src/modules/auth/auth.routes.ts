import { pending, type Route } from '../../http/routes.ts';

// Implemented by the auth issue; until then every operation answers 501 problem+json.
export function authRoutes(): Route[] {
  return [
    pending('login', 'post', '/auth/login'),
    pending('refreshToken', 'post', '/auth/refresh'),
    pending('logout', 'post', '/auth/logout'),
  ];
}
