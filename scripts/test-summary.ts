/**
 * Prints one closing line for the whole suite ("Tests: N passed, N failed, N skipped") from the
 * JSON reports each workspace's vitest run leaves in .test-results/, and fails if a report is
 * missing or counts no test at all, so a silently empty run cannot pass.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface VitestJsonReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  success: boolean;
}

const root = path.resolve(import.meta.dirname, '..');
const expected = [
  'apps/server',
  'packages/bundle-rules',
  'packages/cli',
  'packages/json',
  'packages/sdk',
  'test/conformance',
];
let passed = 0;
let failed = 0;
let skipped = 0;
const problems: string[] = [];

for (const workspace of expected) {
  const dir = path.join(root, workspace, '.test-results');
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    // reported below
  }
  if (files.length === 0) problems.push(`${workspace}: no test report`);
  for (const file of files) {
    const report = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as VitestJsonReport;
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += report.numPendingTests + report.numTodoTests;
    if (report.numPassedTests === 0) problems.push(`${workspace}/${file}: ran no test`);
  }
}

for (const problem of problems) process.stderr.write(`${problem}\n`);
process.stdout.write(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || problems.length > 0 ? 1 : 0);
