import { defineEntity, type InferEntity, p } from '@mikro-orm/core';

export const ROLES = ['read-only', 'read-write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const User = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.string().length(36).primary(),
    /** Compared case-sensitively, as in Synkronus 1.0.3. */
    username: p.string().length(64).unique(),
    passwordHash: p.text(),
    role: p.string().length(16),
    /**
     * Bumped whenever the user's existing tokens must stop working (password or role change);
     * access tokens carry the generation they were issued under.
     */
    tokenGeneration: p.integer().default(0),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});
export type UserEntity = InferEntity<typeof User>;
