import { fileURLToPath } from 'node:url';

export type { components, operations, paths } from './schema.d.ts';

/** Absolute path of the repository's openapi.yaml, the single source of truth. */
export const specPath: string = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url));
