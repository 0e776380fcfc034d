import type { RequestHandler } from 'express';
import type { AuthService, Principal } from '../modules/auth/auth.service.ts';
import type { Role } from '../modules/users/user.entity.ts';
import { Forbidden, Unauthorized } from './errors.ts';
import type { ResolvedOperation } from './operations.ts';

const RANK: Record<Role, number> = { 'read-only': 0, 'read-write': 1, admin: 2 };

/**
 * The one place the role matrix of spec §1 is enforced, from each operation's `x-min-role` in
 * openapi.yaml. Runs after route resolution and before the body is read: 401 → 403 → (input).
 */
export function authenticate(auth: AuthService): RequestHandler {
  return async (req, res, next) => {
    const operation = res.locals.operation as ResolvedOperation | undefined;
    if (!operation?.minRole) {
      next();
      return;
    }
    const token = bearerToken(req.header('authorization'));
    if (!token) throw Unauthorized('A bearer token is required for this operation');
    const principal = await auth.authenticate(token);
    if (RANK[principal.role] < RANK[operation.minRole]) {
      throw Forbidden(
        `This operation requires the ${operation.minRole} role or higher; you have ${principal.role}`,
      );
    }
    res.locals.principal = principal;
    next();
  };
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

/** The caller of a protected operation (set by `authenticate`). */
export function principalOf(res: { locals: Record<string, unknown> }): Principal {
  const principal = res.locals.principal as Principal | undefined;
  if (!principal) throw Unauthorized();
  return principal;
}
