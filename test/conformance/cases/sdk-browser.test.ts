import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTarget } from '../src/harness.ts';
import { call, userWithRole, VIA_SDK } from '../src/http.ts';
import { pullAll } from '../src/sync.ts';

/**
 * The SDK bundled for the browser (esbuild, platform "browser": a Node-only import in the main entry
 * fails the build) and driven in headless Chromium through playwright-core. The Chromium is the
 * one `@sparticuz/chromium` ships inside its npm package (unpacked to the temp directory on first
 * use, nothing downloaded), or `CHROMIUM_PATH` (e.g. Debian's /usr/bin/chromium). The page is
 * served from its own origin, so every call is a real cross-origin request through the server's
 * CORS rules, and state lives in the browser's own IndexedDB or localStorage across reloads.
 */
async function chromiumExecutable(): Promise<string> {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  return packagedChromium();
}

/**
 * The packaged Chromium, unpacked once per package version into a directory of its own. The
 * package unpacks into the temp directory and reuses whatever `chromium` it finds there, complete
 * or not, so each run unpacks into a fresh staging directory (the package reads TMPDIR when it
 * unpacks), marks it complete and renames it into place: a run in parallel never launches half a
 * binary, and an unpacking that died half-way is never reused.
 */
async function packagedChromium(): Promise<string> {
  const entry = fileURLToPath(import.meta.resolve('@sparticuz/chromium'));
  const packageDir = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  const cache = path.join(tmpdir(), `synk-chromium-${version}`);
  const complete = path.join(cache, 'unpacked');
  if (existsSync(complete)) return path.join(cache, 'chromium');
  const staging = mkdtempSync(path.join(tmpdir(), 'synk-chromium-staging-'));
  const { default: packaged } = await import('@sparticuz/chromium');
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = staging;
  try {
    if ((await packaged.executablePath()) !== path.join(staging, 'chromium'))
      throw new Error('@sparticuz/chromium unpacked somewhere else than TMPDIR');
  } catch (err) {
    rmSync(staging, { recursive: true, force: true }); // ~200 MB each time otherwise
    throw err;
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  writeFileSync(path.join(staging, 'unpacked'), version);
  try {
    renameSync(staging, cache);
  } catch {
    // Another run put its copy in place first (or a half one is there without its marker).
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(complete)) throw new Error(`${cache} exists without a finished unpacking: remove it`);
  }
  return path.join(cache, 'chromium');
}

// The SDK test itself; nothing is gained by running it a second time in the SDK pass.
const skip = VIA_SDK;

/** What the page puts on `globalThis` (types only: the code runs in the browser). */
type PageGlobals = { synk: typeof import('@synk/sdk'); ready: boolean };
type StorageKind = 'indexeddb' | 'localstorage';
interface PageArgs {
  baseUrl: string;
  kind: StorageKind;
  credentials?: { username: string; password: string };
}

const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let pageServer: Server;
let origin: string;
let browser: Browser;
let target: Awaited<ReturnType<typeof startTarget>>;
let writer: { username: string; password: string; token: string };

beforeAll(async () => {
  if (skip) return;
  const bundle = await build({
    stdin: { contents: "export * from '@synk/sdk';", resolveDir: import.meta.dirname, loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0]!.text;
  const html =
    '<!doctype html><title>synk browser test</title><script type="module">' +
    "import * as synk from '/synk.js'; globalThis.synk = synk; globalThis.ready = true;</script>";
  pageServer = createServer((req, res) => {
    const isScript = req.url === '/synk.js';
    res.writeHead(200, { 'content-type': isScript ? 'text/javascript' : 'text/html' });
    res.end(isScript ? script : html);
  });
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
  target = await startTarget({ CORS_ORIGINS: origin });
  writer = await userWithRole(target, 'read-write');
  browser = await chromium.launch({ executablePath: await chromiumExecutable(), args: CHROMIUM_FLAGS });
}, 60_000);

afterAll(async () => {
  if (skip) return;
  await browser?.close();
  await target?.close();
  await new Promise((resolve) => pageServer?.close(resolve));
});

async function openPage(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => (globalThis as unknown as PageGlobals).ready === true);
  return page;
}

async function reload(page: Page): Promise<void> {
  await page.reload();
  await page.waitForFunction(() => (globalThis as unknown as PageGlobals).ready === true);
}

const args = (kind: StorageKind, withCredentials = true): PageArgs => ({
  baseUrl: target.baseUrl,
  kind,
  ...(withCredentials ? { credentials: { username: writer.username, password: writer.password } } : {}),
});

describe.skipIf(skip)('the SDK in headless Chromium', () => {
  it.each(['indexeddb', 'localstorage'] as const)(
    'syncs online with %s: pushes saved records, pulls other devices’ records, uploads an attachment',
    async (kind) => {
      const type = `browser-${kind}`;
      const other = await call(target, 'POST', '/sync/push', {
        token: writer.token,
        body: {
          transmission_id: crypto.randomUUID(),
          client_id: 'another-device',
          records: [1, 2].map((n) => ({
            observation_id: `${type}-other-${n}`,
            form_type: type,
            data: { n },
          })),
        },
      });
      expect(other.status).toBe(200);

      const context = await browser.newContext();
      const page = await openPage(context);
      const result = await page.evaluate(async ({ baseUrl, kind, credentials }: PageArgs) => {
        const { createClient, IndexedDBStorage, WebStorage } = (globalThis as unknown as PageGlobals).synk;
        const storage = kind === 'indexeddb' ? new IndexedDBStorage('synk-test') : new WebStorage();
        const client = createClient({ baseUrl, storage, ...(credentials ? { credentials } : {}) });
        const events: string[] = [];
        client.on('sync:started', () => events.push('started'));
        client.on('sync:completed', () => events.push('completed'));
        for (const n of [1, 2, 3])
          await client.records.save({
            observation_id: `browser-${kind}-own-${n}`,
            form_type: `browser-${kind}`,
            data: { n, text: 'näive ✓' },
          });
        const pulled: string[] = [];
        const report = await client.sync({
          schemaTypes: [`browser-${kind}`],
          apply: (records) => {
            pulled.push(...records.map((r) => r.observation_id));
          },
          removeMissing: (keep) => {
            pulled.splice(0, Infinity, ...pulled.filter((id) => keep.has(id)));
          },
        });
        const bytes = new TextEncoder().encode(`photo from ${kind}`);
        const upload = await client.attachments.upload(`browser-${kind}.txt`, bytes, 'text/plain');
        return { report, pulled, events, pending: (await client.records.pending()).length, upload };
      }, args(kind));
      expect(result.report).toMatchObject({ pushed: 3, failed: 0 });
      // Its own records too: pushed first, they come back with their versions.
      expect(result.pulled.sort()).toEqual([
        `${type}-other-1`,
        `${type}-other-2`,
        `${type}-own-1`,
        `${type}-own-2`,
        `${type}-own-3`,
      ]);
      expect(result.events).toEqual(['started', 'completed']);
      expect(result.pending).toBe(0);
      expect(result.upload.hash).toMatch(/^[0-9a-f]{64}$/);

      const onServer = await pullAll(target, writer.token, 0, { schema_types: [type] });
      const own = onServer.records.filter((r) => r.observation_id.includes('-own-'));
      expect(own.map((r) => [r.observation_id, r.data, r.last_modified_by])).toEqual(
        [1, 2, 3].map((n) => [`${type}-own-${n}`, { n, text: 'näive ✓' }, writer.username]),
      );
      const download = await call(target, 'GET', `/attachments/browser-${kind}.txt`, { token: writer.token });
      expect(download.body).toBe(`photo from ${kind}`);
      await context.close();
    },
  );

  it.each(['indexeddb', 'localstorage'] as const)(
    'keeps the %s outbox and session through an offline sync and a reload, then delivers it once',
    async (kind) => {
      const type = `offline-${kind}`;
      const context = await browser.newContext();
      const page = await openPage(context);
      await page.evaluate(async ({ baseUrl, kind, credentials }: PageArgs) => {
        const { createClient, IndexedDBStorage, WebStorage } = (globalThis as unknown as PageGlobals).synk;
        const storage = kind === 'indexeddb' ? new IndexedDBStorage('synk-test') : new WebStorage();
        await createClient({ baseUrl, storage, ...(credentials ? { credentials } : {}) }).sync();
      }, args(kind));

      await context.setOffline(true);
      const offline = await page.evaluate(async ({ baseUrl, kind, credentials }: PageArgs) => {
        const { createClient, IndexedDBStorage, WebStorage } = (globalThis as unknown as PageGlobals).synk;
        const storage = kind === 'indexeddb' ? new IndexedDBStorage('synk-test') : new WebStorage();
        const client = createClient({
          baseUrl,
          storage,
          retry: { retries: 1, baseDelayMs: 10 },
          ...(credentials ? { credentials } : {}),
        });
        for (const n of [1, 2])
          await client.records.save({
            observation_id: `offline-${kind}-${n}`,
            form_type: `offline-${kind}`,
            data: { n },
          });
        const error = await client.sync().then(
          () => 'no error',
          (e: Error) => e.name,
        );
        return { error, pending: (await client.records.pending()).map((r) => r.observation_id) };
      }, args(kind));
      expect(offline).toEqual({ error: 'NetworkError', pending: [`${type}-1`, `${type}-2`] });

      await context.setOffline(false);
      await reload(page);
      // No credentials this time: the session has to come from the browser's storage.
      const online = await page.evaluate(
        async ({ baseUrl, kind }: PageArgs) => {
          const { createClient, IndexedDBStorage, WebStorage } = (globalThis as unknown as PageGlobals).synk;
          const storage = kind === 'indexeddb' ? new IndexedDBStorage('synk-test') : new WebStorage();
          const client = createClient({ baseUrl, storage });
          const pendingBefore = (await client.records.pending()).length;
          const report = await client.sync();
          return { pendingBefore, report, pendingAfter: (await client.records.pending()).length };
        },
        args(kind, false),
      );
      expect(online).toMatchObject({ pendingBefore: 2, report: { pushed: 2, failed: 0 }, pendingAfter: 0 });
      const onServer = await pullAll(target, writer.token, 0, { schema_types: [type] });
      expect(onServer.records.map((r) => r.observation_id)).toEqual([`${type}-1`, `${type}-2`]);
      await context.close();
    },
  );

  it.each(['indexeddb', 'localstorage'] as const)(
    'two tabs saving into one %s outbox at once lose nothing, and both sync it once',
    async (kind) => {
      const type = `tabs-${kind}`;
      const context = await browser.newContext();
      const tabs = [await openPage(context), await openPage(context)];
      const saveIn = (tab: Page, prefix: string) =>
        tab.evaluate(
          async ({ baseUrl, kind, credentials, prefix }: PageArgs & { prefix: string }) => {
            const { createClient, IndexedDBStorage, WebStorage } = (globalThis as unknown as PageGlobals)
              .synk;
            const storage = kind === 'indexeddb' ? new IndexedDBStorage('synk-tabs') : new WebStorage();
            const client = createClient({ baseUrl, storage, ...(credentials ? { credentials } : {}) });
            for (let n = 0; n < 30; n++)
              await client.records.save({
                observation_id: `${prefix}-${n}`,
                form_type: `tabs-${kind}`,
                data: { n },
              });
          },
          { ...args(kind), prefix },
        );
      await Promise.all([saveIn(tabs[0]!, `${type}-a`), saveIn(tabs[1]!, `${type}-b`)]);
      const reports = await Promise.all(
        tabs.map((tab) =>
          tab.evaluate(async ({ baseUrl, kind, credentials }: PageArgs) => {
            const { createClient, IndexedDBStorage, WebStorage } = (globalThis as unknown as PageGlobals)
              .synk;
            const storage = kind === 'indexeddb' ? new IndexedDBStorage('synk-tabs') : new WebStorage();
            const client = createClient({
              baseUrl,
              storage,
              batchSize: 7,
              ...(credentials ? { credentials } : {}),
            });
            const report = await client.sync({ schemaTypes: ['none'] });
            return { pushed: report.pushed, pending: (await client.records.pending()).length };
          }, args(kind)),
        ),
      );
      expect(reports.map((r) => r.pending)).toEqual([0, 0]);
      // A batch both tabs sent counts in both reports (the second was the server's replay).
      expect(reports[0]!.pushed + reports[1]!.pushed).toBeGreaterThanOrEqual(60);
      const onServer = await pullAll(target, writer.token, 0, { schema_types: [type] });
      const ids = onServer.records.map((r) => r.observation_id);
      expect(ids.length).toBe(60);
      expect(new Set(ids).size).toBe(60);
      await context.close();
    },
  );

  it('re-sends a batch whose response was lost with the same transmission_id after a reload (IndexedDB)', async () => {
    const type = 'lost-response';
    const context = await browser.newContext();
    const page = await openPage(context);
    const sent: { transmissionId: string; status: number; replayed: string | null }[] = [];
    let loseNext = true;
    await page.route('**/sync/push', async (route) => {
      const transmissionId = (route.request().postDataJSON() as { transmission_id: string }).transmission_id;
      const response = await route.fetch(); // the server receives and commits it...
      sent.push({
        transmissionId,
        status: response.status(),
        replayed: response.headers()['idempotent-replayed'] ?? null,
      });
      if (loseNext) {
        loseNext = false;
        await route.abort('connectionreset'); // ...but the page never hears back
      } else {
        await route.fulfill({ response });
      }
    });
    const first = await page.evaluate(async ({ baseUrl, credentials }: PageArgs) => {
      const { createClient, IndexedDBStorage } = (globalThis as unknown as PageGlobals).synk;
      const client = createClient({
        baseUrl,
        storage: new IndexedDBStorage('synk-lost'),
        retry: { retries: 0 },
        ...(credentials ? { credentials } : {}),
      });
      // Logged in first: the sync's first request is the push whose answer is lost.
      await client.auth.login();
      for (const n of [1, 2, 3])
        await client.records.save({
          observation_id: `lost-response-${n}`,
          form_type: 'lost-response',
          data: { n },
        });
      return client.sync().then(
        () => 'no error',
        (e: Error) => e.name,
      );
    }, args('indexeddb'));
    expect(first).toBe('NetworkError');
    const versionAfterFirst = (await pullAll(target, writer.token)).currentVersion;

    await reload(page);
    const second = await page.evaluate(
      async ({ baseUrl }: PageArgs) => {
        const { createClient, IndexedDBStorage } = (globalThis as unknown as PageGlobals).synk;
        const client = createClient({ baseUrl, storage: new IndexedDBStorage('synk-lost') });
        const report = await client.sync({ schemaTypes: ['lost-response'] });
        return { report, pending: (await client.records.pending()).length };
      },
      args('indexeddb', false),
    );

    expect(sent).toHaveLength(2);
    expect(sent[1]!.transmissionId).toBe(sent[0]!.transmissionId);
    expect(sent.map((s) => [s.status, s.replayed])).toEqual([
      [200, null],
      [200, 'true'],
    ]);
    expect(second).toEqual({ report: expect.objectContaining({ pushed: 3, failed: 0 }), pending: 0 });
    const after = await pullAll(target, writer.token, 0, { schema_types: [type] });
    expect(after.records.map((r) => r.observation_id)).toEqual([`${type}-1`, `${type}-2`, `${type}-3`]);
    expect(after.currentVersion).toBe(versionAfterFirst); // the replay committed nothing new
    await context.close();
  });
});
