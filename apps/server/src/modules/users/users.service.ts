import { randomBytes, randomUUID } from 'node:crypto';
import { type EntityManager, type MikroORM, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { components } from '@synk/contract';
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import { rowLock, withLock } from '../../db/locks.ts';
import { Conflict, HttpProblem, Invalid, NotFound } from '../../http/errors.ts';
import { checkPasswordPolicy, hashPassword, verifyPassword } from '../../lib/password.ts';
import { PUBLISHED_ADMIN_PASSWORDS } from '../../lib/published-secrets.ts';
import { isNewUsername, USERNAME_PATTERN, USERNAME_RULE } from '../../lib/username.ts';
import type { AuthService, Principal } from '../auth/auth.service.ts';
import { ROLES, type Role, User, type UserEntity } from './user.entity.ts';

export type UserView = components['schemas']['UserListItem'];

export interface UsersServiceDeps {
  orm: MikroORM;
  config: Config;
  auth: AuthService;
  clock: () => Date;
}

const view = (user: UserEntity): UserView => ({
  username: user.username,
  role: user.role as Role,
  createdAt: user.createdAt.toISOString(),
  updatedAt: user.updatedAt.toISOString(),
});

const lastAdmin = (detail: string) => Conflict(detail, 'last_admin');
const invalidCurrentPassword = () =>
  new HttpProblem(403, 'invalid_current_password', 'The current password is wrong');

export class UsersService {
  readonly #deps: UsersServiceDeps;

  constructor(deps: UsersServiceDeps) {
    this.#deps = deps;
  }

  get #em(): EntityManager {
    return this.#deps.orm.em;
  }

  async create(username: string, password: string, role: string): Promise<UserView> {
    if (!isNewUsername(username)) {
      throw Invalid('Invalid username', [{ path: '/body/username', message: USERNAME_RULE }]);
    }
    if (!(ROLES as readonly string[]).includes(role)) {
      throw Invalid('Invalid role', [{ path: '/body/role', message: `must be one of ${ROLES.join(', ')}` }]);
    }
    this.#checkPolicy('/body/password', password);
    const now = this.#deps.clock();
    const passwordHash = await hashPassword(password);
    const em = this.#em.fork();
    if (await em.findOne(User, { username }))
      throw Conflict(`User ${username} already exists`, 'user_exists');
    const user = em.create(User, {
      id: randomUUID(),
      username,
      passwordHash,
      role,
      tokenGeneration: 0,
      createdAt: now,
      updatedAt: now,
    });
    try {
      await em.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException)
        throw Conflict(`User ${username} already exists`, 'user_exists');
      throw err;
    }
    return view(user);
  }

  async list(): Promise<UserView[]> {
    const users = await this.#em.fork().find(User, {});
    // Sorted here, by code unit, so the order is the same on every database and collation.
    return users.map(view).sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
  }

  async delete(username: string): Promise<void> {
    const userId = await withLock('admins', this.#em.fork(), this.#deps.config.database.kind, async (em) => {
      const user = await this.#find(em, username);
      if (user.role === 'admin' && (await em.count(User, { role: 'admin' })) <= 1) {
        throw lastAdmin('The last administrator cannot be deleted');
      }
      // Sessions and refresh tokens go with the user (on delete cascade).
      await em.nativeDelete(User, { id: user.id });
      return user.id;
    });
    this.#deps.auth.forgetUser(userId);
  }

  async setRole(username: string, role: Role): Promise<UserView> {
    const updated = await withLock('admins', this.#em.fork(), this.#deps.config.database.kind, async (em) => {
      const user = await this.#find(em, username);
      if (user.role === role) return user;
      if (user.role === 'admin' && (await em.count(User, { role: 'admin' })) <= 1) {
        throw lastAdmin('The last administrator cannot be demoted');
      }
      user.role = role;
      user.updatedAt = this.#deps.clock();
      await em.flush();
      await this.#deps.auth.revokeAllTokens(em, user.id, 'role_changed');
      return user;
    });
    this.#deps.auth.forgetUser(updated.id);
    return view(updated);
  }

  async resetPassword(username: string, newPassword: string): Promise<void> {
    this.#checkPolicy('/body/newPassword', newPassword);
    const passwordHash = await hashPassword(newPassword);
    const userId = await this.#em.fork().transactional(async (em) => {
      const user = await this.#find(em, username);
      await this.#setPassword(em, user, passwordHash, 'password_reset');
      return user.id;
    });
    this.#deps.auth.forgetUser(userId);
  }

  /** `address`: where the request came from; guesses of the current password count as failed logins. */
  async changePassword(
    principal: Principal,
    currentPassword: string | undefined,
    newPassword: string,
    address: string,
  ): Promise<void> {
    if (currentPassword === undefined) {
      throw Invalid('currentPassword is required', [
        { path: '/body/currentPassword', message: 'is required' },
      ]);
    }
    const current = await this.#em.fork().findOne(User, { id: principal.userId });
    if (!current) throw NotFound('No such user');
    const verified = await this.#deps.auth.throttledCheck(principal.username, address, () =>
      verifyPassword(current.passwordHash, currentPassword),
    );
    if (!verified) throw invalidCurrentPassword();
    this.#checkPolicy('/body/newPassword', newPassword);
    const passwordHash = await hashPassword(newPassword);
    await this.#em.fork().transactional(async (em) => {
      // Only over the password just verified, held until replaced: a reset (or another change)
      // committed during the ~40 ms of checking and hashing was overwritten by this change, so an
      // administrator's reset of a stolen account lost to the thief's change in flight.
      const user = await em.findOne(
        User,
        { id: principal.userId },
        { lockMode: rowLock(this.#deps.config.database.kind, 'update') },
      );
      if (!user) throw NotFound('No such user');
      if (user.passwordHash !== current.passwordHash) throw invalidCurrentPassword();
      await this.#setPassword(em, user, passwordHash, 'password_changed');
    });
    this.#deps.auth.forgetUser(principal.userId);
  }

  /** Creates the first administrator when there are no users at all (first start). */
  async bootstrapAdmin(logger: Logger): Promise<void> {
    const em = this.#em.fork();
    if ((await em.count(User, {})) > 0) return;
    const { adminUsername, adminPassword, auth } = this.#deps.config;
    const password = adminPassword ?? randomBytes(18).toString('base64url');
    const problem = checkPasswordPolicy(password, {
      minLength: auth.passwordMinLength,
      maxLength: auth.passwordMaxLength,
    });
    if (problem) throw new Error(`ADMIN_PASSWORD: ${problem}`);
    if (adminPassword !== undefined && PUBLISHED_ADMIN_PASSWORDS.has(adminPassword.trim()))
      throw new Error(
        'ADMIN_PASSWORD: is the example value published with this project; choose another, or unset it to have one generated (printed once to the log)',
      );
    try {
      await this.create(adminUsername, password, 'admin');
    } catch (err) {
      // Another process sharing the database bootstrapped at the same moment.
      if (err instanceof HttpProblem && err.code === 'user_exists') return;
      throw err;
    }
    if (adminPassword) {
      logger.warn(
        { username: adminUsername },
        `created the first administrator "${adminUsername}" with the password from ADMIN_PASSWORD`,
      );
    } else {
      // Shown at any LOG_LEVEL: at `error` the warning was dropped, and with it the only copy of
      // the password (nobody could ever log in as the administrator).
      const announce = logger.isLevelEnabled('warn') ? logger : logger.child({}, { level: 'warn' });
      announce.warn(
        { username: adminUsername, generatedPassword: password },
        `created the first administrator "${adminUsername}" with the generated password ${password} (shown only this once; change it with POST /users/change-password)`,
      );
    }
  }

  async #find(em: EntityManager, username: string): Promise<UserEntity> {
    // A name no user can have is not looked up (a NUL in it cut SQLite's statement short: 500).
    const user = USERNAME_PATTERN.test(username) ? await em.findOne(User, { username }) : null;
    if (!user) throw NotFound(`No user named ${username}`);
    return user;
  }

  async #setPassword(
    em: EntityManager,
    user: UserEntity,
    passwordHash: string,
    reason: string,
  ): Promise<void> {
    user.passwordHash = passwordHash;
    user.updatedAt = this.#deps.clock();
    await em.flush();
    await this.#deps.auth.revokeAllTokens(em, user.id, reason);
  }

  #checkPolicy(path: string, password: string): void {
    const { passwordMinLength, passwordMaxLength } = this.#deps.config.auth;
    const problem = checkPasswordPolicy(password, {
      minLength: passwordMinLength,
      maxLength: passwordMaxLength,
    });
    if (problem) throw Invalid(`Password ${problem}`, [{ path, message: problem, code: 'password_policy' }]);
  }
}
