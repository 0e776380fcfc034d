import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The package as it would be published: `npm pack`, unpacked into a consumer project that has only
 * the SDK's declared dependencies, type-checked with strict `nodenext` settings and imported by
 * plain Node. Catches declarations that point at unpublished workspace packages or at files left
 * out of the tarball, and a missing `exports` entry.
 */
const packageDir = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const dependencyDir = (name: string) =>
  path.dirname(require.resolve(`${name}/package.json`, { paths: [packageDir] }));

let work: string;
let consumer: string;
let files: string[];

/** `npm pack`s a workspace package and unpacks it into the consumer's node_modules; returns its file list. */
function packInto(dir: string, name: string): string[] {
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: dir, encoding: 'utf8' }),
  ) as { filename: string; files: { path: string }[] }[];
  const installed = path.join(consumer, 'node_modules', name);
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['-xzf', path.join(work, packed!.filename), '-C', installed, '--strip-components=1']);
  return packed!.files.map((f) => f.path);
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'synk-sdk-pack-'));
  consumer = path.join(work, 'consumer');
  files = packInto(packageDir, '@synk/sdk');
  // The SDK's own published dependency from this repository, packed the same way.
  packInto(path.resolve(packageDir, '..', 'json'), '@synk/json');
  const openapiFetch = dependencyDir('openapi-fetch');
  symlinkSync(openapiFetch, path.join(consumer, 'node_modules', 'openapi-fetch'));
  symlinkSync(
    path.dirname(require.resolve('openapi-typescript-helpers/package.json', { paths: [openapiFetch] })),
    path.join(consumer, 'node_modules', 'openapi-typescript-helpers'),
  );
  writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ type: 'module', private: true }));
}, 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the published package', () => {
  it('ships the built code and declarations only, with no workspace references', () => {
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/node.d.ts');
    expect(files).toContain('README.md');
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
    const installed = path.join(consumer, 'node_modules', '@synk', 'sdk', 'dist');
    for (const file of readdirSync(installed, { recursive: true }) as string[]) {
      if (!file.endsWith('.d.ts') && !file.endsWith('.js')) continue;
      expect(readFileSync(path.join(installed, file), 'utf8'), file).not.toMatch(
        /['"]@synk\/(?!sdk|json['"])/,
      );
    }
  });

  it('type-checks in a strict nodenext consumer', () => {
    writeFileSync(
      path.join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2024', 'dom'],
          types: [],
          noEmit: true,
          skipLibCheck: false,
        },
        files: ['app.ts'],
      }),
    );
    writeFileSync(
      path.join(consumer, 'app.ts'),
      [
        "import { createClient, IndexedDBStorage, type Observation, type PullPage } from '@synk/sdk';",
        "import { FileStorage } from '@synk/sdk/node';",
        "const client = createClient({ baseUrl: 'http://localhost:8080', storage: new FileStorage('.synk') });",
        'export async function check(): Promise<string | undefined> {',
        "  const { data } = await client.api.GET('/health');",
        "  const { error } = await client.api.GET('/users');",
        '  const code: string | undefined = error?.code; // problem details are typed',
        '  void code;',
        '  const page: PullPage | undefined = (await client.pullPages().next()).value ?? undefined;',
        '  const first: Observation | undefined = page?.records[0];',
        '  void new IndexedDBStorage();',
        '  return data?.status ?? first?.observation_id;',
        '}',
        '// @ts-expect-error an operation that is not in the contract',
        "client.api.GET('/no-such-path');",
      ].join('\n'),
    );
    const tsc = path.join(dependencyDir('typescript'), 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-p', consumer], { encoding: 'utf8' });
  });

  it('imports in plain Node through its exports map', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const sdk = await import('@synk/sdk'); const node = await import('@synk/sdk/node');" +
          "console.log([typeof sdk.createClient, typeof sdk.IndexedDBStorage, typeof node.FileStorage].join(','));",
      ],
      { cwd: consumer, encoding: 'utf8' },
    );
    expect(out.trim()).toBe('function,function,function');
  });
});
