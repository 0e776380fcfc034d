import { createHash } from 'node:crypto';
import { buildZip, deflatedZeros, type ZipInput } from '@synk/test-support/zip';
import unzipper from 'unzipper';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleEntries, householdSchema, pushBundle, zipOf } from '../src/bundles.ts';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, send, userWithRole } from '../src/http.ts';
import { push } from '../src/sync.ts';

const target = useTarget({
  MAX_VERSIONS_KEPT: '3',
  BUNDLE_MAX_ENTRIES: '5000',
  BUNDLE_MAX_UNCOMPRESSED_BYTES: String(64 * 1024 * 1024),
  SYNC_VALIDATION: 'reject',
});

let admin: string;
let reader: { token: string };
beforeAll(async () => {
  admin = await adminToken(target);
  reader = await userWithRole(target, 'read-only');
});

const get = (path: string, headers: Record<string, string> = {}, token = reader.token) =>
  send(target, path, { headers: { authorization: `Bearer ${token}`, ...headers } });

/** The form the active version holds from the first push on: a bundle leaving it out removes its core fields. */
const activeForms = { household: { schema: householdSchema() } };
/** app/index.html and the active version's forms, for bundles built entry by entry. */
const keptForms = bundleEntries(activeForms);

async function expectRejected(zip: Buffer, status: number, pattern?: RegExp) {
  const before = await call(target, 'GET', '/app-bundle/versions', { token: admin });
  const res = await pushBundle(target, admin, zip);
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(status);
  if (pattern) expect(JSON.stringify(body.errors ?? body.detail)).toMatch(pattern);
  const after = await call(target, 'GET', '/app-bundle/versions', { token: admin });
  expect(after.body).toEqual(before.body); // nothing left behind
  return body;
}

describe('push → switch → manifest → download', () => {
  it('pushes version 0001 (not active until asked), then activates, and serves its files', async () => {
    // Before any bundle is active the manifest is an empty one, as 1.0.3 answers (apps poll it).
    const none = await get('/app-bundle/manifest');
    expect(none.status).toBe(200);
    const empty = await none.json();
    expect(empty).toMatchObject({ files: [], version: '' });
    expect(none.headers.get('etag')).toBe(`"${empty.hash}"`);
    expect((await get('/app-bundle/manifest', { 'if-none-match': `"${empty.hash}"` })).status).toBe(304);
    expect((await get('/app-bundle/download/app/index.html')).status).toBe(404);
    const res = await pushBundle(target, admin, zipOf({ household: { schema: householdSchema() } }));
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.message).toBe('App bundle successfully pushed');
    expect(body.manifest).toMatchObject({ version: '0001', hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const paths = body.manifest.files.map((f: { path: string }) => f.path);
    expect(paths).toEqual([...paths].sort());
    expect(paths).toContain('forms/household/schema.json');

    const versions = await call(target, 'GET', '/app-bundle/versions', { token: reader.token });
    expect(versions.body).toEqual({ versions: ['0001'] });
    expect(await (await get('/app-bundle/manifest')).json()).toEqual(empty);
    // One version only: compared with itself, no changes (1.0.3 answers so; this was a 404).
    const changes = await call(target, 'GET', '/app-bundle/changes', { token: reader.token });
    expect(changes.status).toBe(200);
    expect(changes.body).toEqual({
      compare_version_a: '0001',
      compare_version_b: '0001',
      form_changes: false,
      ui_changes: false,
      new_forms: [],
      removed_forms: [],
      modified_forms: [],
    });

    const switched = await call(target, 'POST', '/app-bundle/switch/0001', { token: admin });
    expect(switched.body).toEqual({ message: 'Switched to app bundle version 0001' });
    const manifest = await get('/app-bundle/manifest');
    expect(manifest.status).toBe(200);
    const m = await manifest.json();
    expect(m).toEqual(body.manifest);
    expect(manifest.headers.get('etag')).toBe(`"${m.hash}"`);

    const index = await get('/app-bundle/download/app/index.html');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    const text = await index.text();
    expect(text).toContain('field app');
    const entry = m.files.find((f: { path: string }) => f.path === 'app/index.html');
    expect(index.headers.get('etag')).toBe(`"${createHash('sha256').update(text).digest('hex')}"`);
    expect(entry.hash).toBe(createHash('sha256').update(text).digest('hex'));
    const encoded = await get('/app-bundle/download/app%2Findex.html');
    expect(await encoded.text()).toBe(text);
    expect((await get('/app-bundle/download/app/js/main.js')).headers.get('content-type')).toMatch(
      /javascript/,
    );
  });

  it('304 for a matching If-None-Match on manifest and files (strong, weak, lists, *)', async () => {
    const manifest = await get('/app-bundle/manifest');
    const etag = manifest.headers.get('etag')!;
    for (const value of [etag, `W/${etag}`, `"x", ${etag}`, '*']) {
      expect((await get('/app-bundle/manifest', { 'if-none-match': value })).status).toBe(304);
    }
    expect((await get('/app-bundle/manifest', { 'if-none-match': '"stale"' })).status).toBe(200);
    const file = await get('/app-bundle/download/app/index.html');
    expect(
      (await get('/app-bundle/download/app/index.html', { 'if-none-match': file.headers.get('etag')! }))
        .status,
    ).toBe(304);
  });

  it('a push without activate leaves the active version alone; preview serves the latest', async () => {
    const res = await pushBundle(
      target,
      admin,
      zipOf({ household: { schema: householdSchema({ roof: { type: 'string' } }) } }),
    );
    expect((await res.json()).manifest.version).toBe('0002');
    expect((await (await get('/app-bundle/manifest')).json()).version).toBe('0001');
    const preview = await get('/app-bundle/manifest?preview=true');
    expect((await preview.json()).version).toBe('0002');
    const file = await get('/app-bundle/download/forms/household/schema.json?preview=true');
    expect(file.headers.get('x-is-preview')).toBe('true');
    expect(JSON.parse(await file.text()).properties.roof).toEqual({ type: 'string' });
    const active = await get('/app-bundle/download/forms/household/schema.json');
    expect(active.headers.get('x-is-preview')).toBeNull();
    expect(JSON.parse(await active.text()).properties.roof).toBeUndefined();
    expect((await call(target, 'GET', '/app-bundle/versions', { token: reader.token })).body).toEqual({
      versions: ['0002', '0001'],
      current: '0001',
    });
  });

  it('activate=true (form field or query) activates at once', async () => {
    const viaQuery = await pushBundle(
      target,
      admin,
      zipOf({ household: { schema: householdSchema({ roof: { type: 'string' } }) } }),
      {
        query: '?activate=true',
      },
    );
    const version = (await viaQuery.json()).manifest.version;
    expect((await (await get('/app-bundle/manifest')).json()).version).toBe(version);
  });

  it('switch: unknown → 404, malformed → 400, read-write → 403', async () => {
    expect((await call(target, 'POST', '/app-bundle/switch/9999', { token: admin })).status).toBe(404);
    expect((await call(target, 'POST', '/app-bundle/switch/latest', { token: admin })).status).toBe(400);
    const writer = await userWithRole(target, 'read-write');
    expect((await call(target, 'POST', '/app-bundle/switch/0001', { token: writer.token })).status).toBe(403);
  });

  it('download: traversal → 400; missing → 404', async () => {
    for (const path of [
      '..%2F..%2Fetc%2Fpasswd',
      'app%2F..%2F..%2Fsecret',
      '%2Fetc%2Fpasswd',
      'app%5Cindex.html',
    ]) {
      expect((await get(`/app-bundle/download/${path}`)).status, path).toBe(400);
    }
    expect((await get('/app-bundle/download/app/missing.html')).status).toBe(404);
  });

  it('download-zip streams the whole bundle as a ZIP that unzips to the manifest', async () => {
    const res = await get('/app-bundle/download-zip');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    // Something to save, never a document a browser would render on the server's origin.
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="app-bundle-\d{4}\.zip"$/);
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const zip = Buffer.from(await res.arrayBuffer());
    const directory = await unzipper.Open.buffer(zip);
    const manifest = await (await get('/app-bundle/manifest')).json();
    expect(directory.files.map((f) => f.path).sort()).toEqual(
      manifest.files.map((f: { path: string }) => f.path),
    );
    for (const file of directory.files) {
      const expected = manifest.files.find((f: { path: string }) => f.path === file.path);
      expect(
        createHash('sha256')
          .update(await file.buffer())
          .digest('hex'),
      ).toBe(expected.hash);
    }
    expect((await get('/app-bundle/download-zip?version=0001')).status).toBe(200);
    expect((await get('/app-bundle/download-zip?version=9999')).status).toBe(404);
  });
});

describe('validation: every problem at once, nothing left behind', () => {
  it('not a ZIP → 400', async () => {
    await expectRejected(Buffer.from('this is not a zip file'), 400, /not a ZIP/);
  });

  it.each<[string, ZipInput[], RegExp]>([
    ['traversal ../../x', [{ name: '../../x', data: 'x' }], /\.\.\/\.\.\/x/],
    ['an absolute path /etc/x', [{ name: '/etc/x', data: 'x' }], /absolute/],
    ['a drive path C:\\x', [{ name: 'C:\\x', data: 'x' }], /backslash|absolute/],
    ['a backslash', [{ name: 'app\\evil.js', data: 'x' }], /backslash/],
    ['a symlink', [{ name: 'app/link', data: '/etc/passwd', mode: 0o120777 }], /symbolic link/],
    ['a duplicate name', [{ name: 'app/index.html', data: 'again' }], /more than once/],
    [
      'names differing only in case',
      [{ name: 'app/Index.HTML', data: 'again' }],
      /"path":"app\/Index.HTML","message":"differs from app\/index.html only in case/,
    ],
    [
      'names differing only in Unicode normalization',
      [
        { name: 'app/caf\u00e9.txt', data: 'composed' },
        { name: 'app/cafe\u0301.txt', data: 'decomposed' },
      ],
      /differs from app\/café.txt only in case or Unicode normalization/,
    ],
    ['a stray top-level file', [{ name: 'README.md', data: 'x' }], /top level/],
    [
      'an unexpected file in a form folder',
      [{ name: 'forms/household/extra.txt', data: 'x' }],
      /only schema.json and ui.json/,
    ],
    [
      'a stray top-level folder (a folder entry alone)',
      [{ name: 'other/' }],
      /"path":"other\/","message":"nothing but app\/, forms\/ and renderers\/ may be at the top level"/,
    ],
    [
      'a folder inside a form folder',
      [{ name: 'forms/household/more/' }],
      /"path":"forms\/household\/more\/","message":"only schema.json and ui.json/,
    ],
    ['a folder inside a renderer folder', [{ name: 'renderers/r/lib/' }], /"path":"renderers\/r\/lib\/"/],
    [
      'a folder name holding data',
      [{ name: 'app/data/', data: 'not a folder' }],
      /"path":"app\/data\/","message":"is named as a folder but holds data"/,
    ],
  ])('%s → 400 naming it', async (_label, extra, pattern) => {
    await expectRejected(zipOf({ household: { schema: householdSchema() } }, extra), 400, pattern);
  });

  it('missing app/index.html, missing ui.json, bad JSON, non-object JSON, uncompilable schema, unknown renderer: all listed', async () => {
    const zip = buildZip([
      { name: 'app/other.html', data: 'x' },
      { name: 'forms/a/schema.json', data: '{"type":"object"' },
      { name: 'forms/a/ui.json', data: '{}' },
      { name: 'forms/b/schema.json', data: '{"type":"object"}' },
      { name: 'forms/c/schema.json', data: '[1,2]' },
      { name: 'forms/c/ui.json', data: '{}' },
      {
        name: 'forms/d/schema.json',
        data: JSON.stringify({ type: 'object', properties: { x: { type: 'no-such-type' } } }),
      },
      { name: 'forms/d/ui.json', data: '{}' },
      {
        name: 'forms/e/schema.json',
        data: JSON.stringify({
          type: 'object',
          properties: { sig: { type: 'string', 'x-renderer': 'hologram' } },
        }),
      },
      {
        name: 'forms/e/ui.json',
        data: JSON.stringify({ type: 'Control', options: { format: 'telepathy' } }),
      },
      {
        name: 'forms/g/schema.json',
        data: JSON.stringify({
          type: 'object',
          properties: { p: { type: 'string', rendererType: 'ghost' } },
        }),
      },
      { name: 'forms/g/ui.json', data: '{}' },
    ]);
    const body = await expectRejected(zip, 400);
    const problems = body.errors
      .map((e: { path: string; message: string }) => `${e.path}: ${e.message}`)
      .join('\n');
    expect(problems).toMatch(/app\/index.html: is required/);
    expect(problems).toMatch(/forms\/b\/ui.json: is required/);
    expect(problems).toMatch(/forms\/a\/schema.json: is not valid JSON/);
    expect(problems).toMatch(/forms\/c\/schema.json: must be a JSON object/);
    expect(problems).toMatch(/forms\/d\/schema.json: is not a valid JSON Schema/);
    expect(problems).toMatch(/forms\/e\/schema.json: refers to unknown renderer "hologram"/);
    expect(problems).toMatch(/forms\/e\/ui.json: refers to unknown renderer "telepathy"/);
    expect(problems).toMatch(/forms\/g\/schema.json: refers to unknown renderer "ghost"/);
  });

  it('JSON nested 200000 levels deep in a ui.json and a schema.json → 400 naming both files', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const zip = buildZip([
      ...keptForms,
      { name: 'forms/a/schema.json', data: JSON.stringify({ type: 'object' }) },
      { name: 'forms/a/ui.json', data: `{"a":${deep}}` },
      { name: 'forms/b/schema.json', data: `{"type":"object","x":${deep}}` },
      { name: 'forms/b/ui.json', data: '{}' },
    ]);
    const body = await expectRejected(zip, 400);
    expect(body.code).toBe('invalid_bundle');
    expect(body.errors).toEqual([
      {
        path: 'forms/a/ui.json',
        message: 'nests objects and arrays more than 100 levels deep',
        code: 'too_deep',
      },
      {
        path: 'forms/b/schema.json',
        message: 'nests objects and arrays more than 100 levels deep',
        code: 'too_deep',
      },
    ]);
  });

  it('a number too large to hold (1e400) in a schema.json or a ui.json → 400 naming both files', async () => {
    const zip = buildZip([
      ...keptForms,
      { name: 'forms/a/schema.json', data: '{"type":"object","properties":{"n":{"maximum":1e400}}}' },
      { name: 'forms/a/ui.json', data: '{"options":{"max":-2e308}}' },
    ]);
    const body = await expectRejected(zip, 400);
    const message = 'holds a number too large to represent (such as 1e400)';
    expect(body.errors).toEqual([
      { path: 'forms/a/schema.json', message, code: 'invalid_json' },
      { path: 'forms/a/ui.json', message, code: 'invalid_json' },
    ]);
  });

  it('JSON 100 levels deep, and brackets inside strings, are fine', async () => {
    let schema: Record<string, unknown> = { type: 'string', title: '[[[[{{{{'.repeat(100) };
    for (let i = 0; i < 49; i++) schema = { type: 'object', properties: { inner: schema } };
    let ui: unknown = { type: 'Control', scope: '#/properties/inner', options: { format: 'text' } };
    for (let i = 0; i < 49; i++) ui = { type: 'VerticalLayout', elements: [ui] };
    expect(JSON.stringify(schema)).toMatch(/(\{"type":"object","properties":\{"inner":){49}/);
    expect((await pushBundle(target, admin, zipOf({ ...activeForms, deep: { schema, ui } }))).status).toBe(
      200,
    );
  });

  it('entries that cannot be extracted → 400 naming each, with no server path in the answer', async () => {
    const zip = zipOf({ household: { schema: householdSchema() } }, [
      { name: 'app/x', data: 'a file' },
      { name: 'app/x/y', data: 'a file inside the file' },
      { name: 'app/x/z/' },
      { name: `app/${'n'.repeat(300)}.txt`, data: 'a name no file system takes' },
      { name: 'app/bzip2.txt', data: 'BZh91AY&SY', method: 12 },
      { name: 'app/secret.txt', data: 'x'.repeat(20), flags: 1, store: true },
      { name: 'app/corrupt.txt', data: Buffer.from('not deflate data at all, not at all'), method: 8 },
      {
        name: 'app/flipped.txt',
        data: 'stored bytes, one of them changed in transit',
        store: true,
        crc: 12345,
      },
    ]);
    const body = await expectRejected(zip, 400);
    expect(body.code).toBe('invalid_bundle');
    expect(body.errors).toEqual([
      { path: 'app/x/y', message: 'is inside app/x, which is a file', code: 'duplicate_entry' },
      { path: 'app/x/z/', message: 'is inside app/x, which is a file', code: 'duplicate_entry' },
      {
        path: `app/${'n'.repeat(300)}.txt`,
        message: 'cannot be extracted: its name is too long for the file system',
        code: 'corrupt_entry',
      },
      {
        path: 'app/bzip2.txt',
        message:
          'cannot be extracted: it uses compression method 12; only stored (0) and deflate (8) are supported',
        code: 'corrupt_entry',
      },
      { path: 'app/secret.txt', message: 'cannot be extracted: it is encrypted', code: 'corrupt_entry' },
      {
        path: 'app/corrupt.txt',
        message: expect.stringMatching(/^cannot be extracted: its compressed data is corrupt \(.+\)$/),
        code: 'corrupt_entry',
      },
      {
        path: 'app/flipped.txt',
        message: 'cannot be extracted: its data does not match its CRC-32 checksum (the archive is corrupt)',
        code: 'corrupt_entry',
      },
    ]);
    expect(JSON.stringify(body)).not.toMatch(/app-bundles|stage-|\/tmp\/|E[A-Z]+:/);
  });

  it('a file and a folder whose names differ only in case or Unicode normalization → 400 naming each', async () => {
    // One name on macOS, iOS and Windows: the file and the folder cannot both be extracted there.
    const zip = zipOf({ household: { schema: householdSchema() } }, [
      { name: 'app/Data', data: 'a file' },
      { name: 'app/data/x.json', data: '{}' },
      { name: 'app/caf\u00e9', data: 'a file, its name composed' },
      { name: 'app/cafe\u0301/y.js', data: 'in a folder, its name decomposed' },
    ]);
    const body = await expectRejected(zip, 400);
    expect(body.errors).toEqual([
      {
        path: 'app/data/x.json',
        message:
          'is inside app/data, which differs from the file app/Data only in case or Unicode normalization (one name on macOS, iOS and Windows)',
        code: 'duplicate_entry',
      },
      {
        path: 'app/cafe\u0301/y.js',
        message:
          'is inside app/cafe\u0301, which differs from the file app/caf\u00e9 only in case or Unicode normalization (one name on macOS, iOS and Windows)',
        code: 'duplicate_entry',
      },
    ]);
  });

  it('an entry whose data is shorter than its header declares → 400 naming it', async () => {
    const zip = zipOf({ household: { schema: householdSchema() } }, [
      { name: 'app/short.bin', data: Buffer.alloc(100, 7), declaredSize: 1000, store: true },
      { name: 'app/short.txt', data: 'deflated, and shorter than declared', declaredSize: 4096 },
    ]);
    const body = await expectRejected(zip, 400);
    expect(body.errors).toEqual([
      {
        path: 'app/short.bin',
        message: 'cannot be extracted: it holds 100 bytes where its header declares 1000',
        code: 'corrupt_entry',
      },
      {
        path: 'app/short.txt',
        message: 'cannot be extracted: it holds 35 bytes where its header declares 4096',
        code: 'corrupt_entry',
      },
    ]);
  });

  it('a form missing one of its files still has the other file’s problems listed', async () => {
    const zip = buildZip([
      ...keptForms,
      { name: 'forms/a/schema.json', data: '{"type":' },
      {
        name: 'forms/b/ui.json',
        data: JSON.stringify({ type: 'Control', options: { format: 'telepathy' } }),
      },
      { name: 'forms/c/schema.json', data: JSON.stringify({ type: 'no-such-type' }) },
    ]);
    const body = await expectRejected(zip, 400);
    const problems = body.errors.map((e: { path: string; message: string }) => `${e.path}: ${e.message}`);
    expect(problems).toEqual([
      'forms/a/ui.json: is required for every form',
      'forms/b/schema.json: is required for every form',
      'forms/c/ui.json: is required for every form',
      expect.stringMatching(/^forms\/a\/schema.json: is not valid JSON/),
      'forms/b/ui.json: refers to unknown renderer "telepathy"',
      expect.stringMatching(/^forms\/c\/schema.json: is not a valid JSON Schema/),
    ]);
  });

  it('folder entries where the layout has room for them are fine', async () => {
    const folders = [
      'app/',
      'app/js/',
      'app/img/',
      'forms/',
      'forms/household/',
      'forms/empty/',
      'renderers/',
    ];
    const zip = zipOf(
      { household: { schema: householdSchema() } },
      folders.map((name) => ({ name })),
    );
    const res = await pushBundle(target, admin, zip);
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await res.json()).manifest.files.map((f: { path: string }) => f.path)).not.toContain('app/img/');
  });

  it('bundled renderers and built-ins are fine', async () => {
    const zip = zipOf(
      {
        ...activeForms,
        survey: {
          schema: { type: 'object', properties: { s: { type: 'string', 'x-renderer': 'stars' } } },
          ui: { options: { format: 'signature' } },
        },
      },
      [{ name: 'renderers/stars/renderer.jsx', data: 'export default () => null' }],
    );
    expect((await pushBundle(target, admin, zip)).status).toBe(200);
  });

  it('6000 entries → 413', async () => {
    const many = Array.from({ length: 6000 }, (_, i) => ({ name: `app/f${i}.txt`, data: '', store: true }));
    await expectRejected(zipOf({}, many), 413);
  });

  it('an end record declaring 60000 entries → 413 from the count alone, before the directory is read', async () => {
    // The directory holds the bundle's few entries: parsing it for the declared 60000 would fail
    // (a 400 "not a ZIP"), so a 413 shows the count was refused before any parsing.
    const zip = buildZip(bundleEntries({ household: { schema: householdSchema() } }), {
      declaredEntries: 60_000,
    });
    const body = await expectRejected(zip, 413);
    expect(body.detail).toMatch(/60000 entries; at most 5000/);
  });

  it('a ZIP64 end record declaring 2^40 entries → 413', async () => {
    const zip = buildZip(bundleEntries({ household: { schema: householdSchema() } }), {
      zip64: true,
      declaredEntries: 2 ** 40,
    });
    const body = await expectRejected(zip, 413);
    expect(body.detail).toMatch(/1099511627776 entries/);
  });

  it('a ZIP64 end record, or a long archive comment, is read like any other ZIP', async () => {
    const entries = bundleEntries({ household: { schema: householdSchema() } });
    for (const end of [{ zip64: true }, { comment: 'made by a tool that signs its archives '.repeat(20) }]) {
      const res = await pushBundle(target, admin, buildZip(entries, end));
      const body = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.manifest.files.map((f: { path: string }) => f.path)).toContain('forms/household/ui.json');
    }
  });

  it('a 1 GB-uncompressed bomb → 413 before anything is inflated', async () => {
    const bomb = await deflatedZeros(1024 * 1024 * 1024);
    await expectRejected(zipOf({}, [{ name: 'app/bomb.bin', deflated: bomb }]), 413);
  });

  it('an entry that inflates beyond what its header declares → 413', async () => {
    const liar = await deflatedZeros(8 * 1024 * 1024);
    await expectRejected(zipOf({}, [{ name: 'app/liar.bin', deflated: liar, declaredSize: 1000 }]), 413);
  });
});

describe('core fields of the active version are immutable', () => {
  it('removing, changing or adding core fields of an existing form → 400 naming them; new forms may declare any', async () => {
    const active = (await (await get('/app-bundle/manifest')).json()).version;
    expect(active).toBeDefined();
    const changed = householdSchema({ core_new: { type: 'string' } });
    (changed.properties as Record<string, unknown>).head_name = { type: 'integer', 'x-core': true };
    delete (changed.properties as Record<string, unknown>).core_household_id;
    const body = await expectRejected(zipOf({ household: { schema: changed } }), 400);
    const text = JSON.stringify(body.errors);
    expect(text).toMatch(/core field \\"core_household_id\\" may not be removed/);
    expect(text).toMatch(/core field \\"head_name\\" may not change/);
    expect(text).toMatch(/core field \\"core_new\\" may not be added/);

    const fresh = await pushBundle(
      target,
      admin,
      zipOf({
        household: { schema: householdSchema({ roof: { type: 'string' }, water: { type: 'boolean' } }) },
        clinic: { schema: { type: 'object', properties: { core_clinic_id: { type: 'string' } } } },
      }),
    );
    expect(fresh.status).toBe(200);
  });
});

describe('GET /app-bundle/changes', () => {
  it('diffs two versions: new/removed forms, field additions/removals, type changes, core and ui changes', async () => {
    const a = await pushBundle(
      target,
      admin,
      zipOf({
        household: { schema: householdSchema({ roof: { type: 'string' } }) },
        clinic: { schema: { type: 'object', properties: { core_clinic_id: { type: 'string' } } } },
      }),
    );
    const older = (await a.json()).manifest.version;
    const b = await pushBundle(
      target,
      admin,
      zipOf({
        household: {
          schema: householdSchema({ roof: { type: 'integer' }, water: { type: ['string', 'null'] } }),
          ui: { type: 'HorizontalLayout', elements: [] },
        },
        school: { schema: { type: 'object', properties: {} } },
      }),
    );
    const newer = (await b.json()).manifest.version;
    const res = await call(target, 'GET', `/app-bundle/changes?current=${newer}&target=${older}`, {
      token: reader.token,
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      compare_version_a: newer,
      compare_version_b: older,
      form_changes: true,
      ui_changes: true,
      new_forms: [{ form: 'school' }],
      removed_forms: [{ form: 'clinic' }],
      modified_forms: [
        {
          form: 'household',
          schema_changed: true,
          ui_changed: true,
          core_changed: false,
          added_fields: [
            { field: 'roof', type: 'integer' },
            { field: 'water', type: 'string|null' },
          ],
          removed_fields: [{ field: 'roof', type: 'string' }],
        },
      ],
    });
    // Defaults: current = latest, target = the one before it.
    const defaults = await call(target, 'GET', '/app-bundle/changes', { token: reader.token });
    expect(defaults.body).toEqual(res.body);
    expect(
      (await call(target, 'GET', '/app-bundle/changes?current=9998', { token: reader.token })).status,
    ).toBe(404);
    expect(
      (await call(target, 'GET', '/app-bundle/changes?target=abc', { token: reader.token })).status,
    ).toBe(400);
  });
});

describe('MAX_VERSIONS_KEPT and the active version', () => {
  it('keeps the newest 3 versions and never prunes the active one', async () => {
    await call(target, 'POST', '/app-bundle/switch/0001', { token: admin }).then(async (r) => {
      // 0001 may have been pruned already by earlier pushes; then activate the oldest kept one.
      if (r.status === 404) {
        const { versions } = (await call(target, 'GET', '/app-bundle/versions', { token: admin })).body;
        await call(target, 'POST', `/app-bundle/switch/${versions.at(-1)}`, { token: admin });
      }
    });
    const active = (await call(target, 'GET', '/app-bundle/versions', { token: admin })).body.current;
    for (let i = 0; i < 4; i++) {
      expect(
        (
          await pushBundle(
            target,
            admin,
            zipOf({
              household: {
                schema: householdSchema({ roof: { type: 'integer' }, water: { type: ['string', 'null'] } }),
              },
            }),
          )
        ).status,
      ).toBe(200);
    }
    const { versions, current } = (await call(target, 'GET', '/app-bundle/versions', { token: admin })).body;
    expect(current).toBe(active);
    expect(versions).toContain(active);
    expect(versions.filter((v: string) => v !== active)).toHaveLength(3);
    expect((await get(`/app-bundle/download-zip?version=${active}`)).status).toBe(200);
  });
});

describe('record validation against the active bundle (SYNC_VALIDATION=reject)', () => {
  it('rejects data that breaks the active form schema, warns on unknown form types', async () => {
    const writer = await userWithRole(target, 'read-write');
    const res = await push(target, writer.token, [
      { observation_id: 'ok-1', form_type: 'household', data: { core_household_id: 'h1', members: 3 } },
      { observation_id: 'bad-1', form_type: 'household', data: { members: -2 } },
      { observation_id: 'unknown-1', form_type: 'no-such-form', data: {} },
    ]);
    expect(res.status).toBe(200);
    expect(res.body.success_count).toBe(2);
    expect(res.body.failed_records).toEqual([
      expect.objectContaining({
        index: 1,
        observation_id: 'bad-1',
        code: 'schema_validation',
        errors: expect.any(Array),
      }),
    ]);
    const paths = res.body.failed_records[0].errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['/data', '/data/members']));
    expect(res.body.warnings).toEqual([
      expect.objectContaining({ id: 'unknown-1', code: 'UNKNOWN_FORM_TYPE' }),
    ]);
  });

  it('deletes whatever the data of the tombstone, and of forms the bundle no longer has', async () => {
    const writer = await userWithRole(target, 'read-write');
    const res = await push(target, writer.token, [
      { observation_id: 'ok-1', form_type: 'household', data: {}, deleted: true },
      { observation_id: 'unknown-1', form_type: 'no-such-form', data: {}, deleted: true },
    ]);
    expect(res.status).toBe(200);
    // A schema's required fields would keep a record undeletable, and a removed form's forever.
    expect(res.body).toMatchObject({ success_count: 2, failed_records: [], warnings: [] });
  });
});
