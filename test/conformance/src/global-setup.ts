import type { TestProject } from 'vitest/node';

/**
 * With SYNK_TEST_DB=postgres the whole suite runs against PostgreSQL: one throwaway server for the
 * run (or TEST_PG_URL's), and a fresh database for each test file (see harness.ts).
 */
export default async function setup(project: TestProject) {
  if (process.env.SYNK_TEST_DB !== 'postgres') return;
  const { startPostgres } = await import('@synk/test-support/postgres');
  const postgres = await startPostgres();
  project.provide('pgUrl', postgres.url);
  return () => postgres.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}
