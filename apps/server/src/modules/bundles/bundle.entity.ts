import { defineEntity, type InferEntity, p } from '@mikro-orm/core';

/** One pushed app bundle version; its files live in `APP_BUNDLE_PATH/versions/<version>/`. */
export const AppBundleVersion = defineEntity({
  name: 'AppBundleVersion',
  tableName: 'app_bundle_versions',
  properties: {
    /** `0001`, `0002`, … */
    version: p.string().length(16).primary(),
    createdAt: p.datetime(),
    pushedBy: p.string().length(64),
    /** The manifest (files, hash) as JSON, computed once at push time so it is stable forever. */
    manifest: p.text(),
  },
});
export type AppBundleVersionEntity = InferEntity<typeof AppBundleVersion>;

/** The pointer to the active version: switching is one row update. */
export const AppBundleState = defineEntity({
  name: 'AppBundleState',
  tableName: 'app_bundle_state',
  properties: {
    id: p.integer().primary(),
    activeVersion: p.string().length(16).nullable(),
  },
});
