import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildZip } from '@synk/test-support/zip';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { BackupError, backupData, RESTORE_VERSION_GAP } from '../src/db/backup.ts';
import { createLogger } from '../src/lib/logger.ts';
import { closeContext, createContext } from '../src/server.ts';
import { ADMIN_PASSWORD, createTestApp, type TestApp, tempDir } from './helpers.ts';

const run = promisify(execFile);

/** The stored file of a blob (FileBlobStorage's layout: `attachments/ab/abcdef…`). */
const blobFile = (dataDir: string, hash: string) => path.join(dataDir, 'attachments', hash.slice(0, 2), hash);

describe('backing up the data directory (SQLite)', () => {
  let t: TestApp;
  let admin: string;
  let parent: string;
  const hashes: Record<string, string> = {};

  const upload = async (app: TestApp['app'], id: string, bytes: string) => {
    const res = await request(app)
      .put(`/attachments/${id}`)
      .set('authorization', admin)
      .attach('file', Buffer.from(bytes), id);
    expect(res.status).toBe(200);
    hashes[id] = res.body.hash;
  };
  const pullAll = async (app: TestApp['app'], authorization: string) => {
    const res = await request(app)
      .post('/sync/pull?limit=500')
      .set('authorization', authorization)
      .send({ client_id: 'backup-check' });
    expect(res.status).toBe(200);
    return res.body.records as { observation_id: string; hash: string; version: number }[];
  };

  beforeAll(async () => {
    parent = tempDir('synk-backup-');
    // A database file (not :memory:), outside the data directory: the backup puts it at the default place.
    t = await createTestApp({ DB_CONNECTION: path.join(parent, 'elsewhere.db') });
    admin = `Bearer ${await t.tokenFor('admin')}`;
    const records = Array.from({ length: 30 }, (_, i) => ({
      observation_id: `r-${i}`,
      form_type: 'household',
      data: { n: i, name: `Respondent ${i}` },
      deleted: i % 10 === 9,
    }));
    const push = await request(t.app)
      .post('/sync/push')
      .set('authorization', admin)
      .send({ transmission_id: randomUUID(), client_id: 'phone', records });
    expect(push.body.success_count).toBe(30);
    await upload(t.app, 'photo.jpg', 'jpeg bytes');
    await upload(t.app, 'copy.jpg', 'jpeg bytes'); // the same blob as photo.jpg
    await upload(t.app, 'gone.txt', 'deleted later');
    expect((await request(t.app).delete('/attachments/gone.txt').set('authorization', admin)).status).toBe(
      200,
    );
    for (const [marker, activate] of [
      ['one', true],
      ['two', false],
    ] as const) {
      const zip = buildZip([
        { name: 'app/index.html', data: `<p>${marker}</p>` },
        { name: 'forms/f/schema.json', data: JSON.stringify({ type: 'object' }) },
        { name: 'forms/f/ui.json', data: '{}' },
      ]);
      const res = await request(t.app)
        .post(`/app-bundle/push${activate ? '?activate=true' : ''}`)
        .set('authorization', admin)
        .attach('bundle', zip, 'b.zip');
      expect(res.status).toBe(200);
    }
  });
  afterAll(async () => {
    await t.close();
    rmSync(parent, { recursive: true, force: true });
  });

  it('copies a running server’s data into a directory a server starts on, tokens still valid', async () => {
    const target = path.join(parent, 'backup-1');
    const summary = await backupData(t.ctx.config, target);
    expect(summary).toEqual({
      directory: target,
      records: 30,
      attachments: 2,
      attachmentBytes: 20,
      bundleVersions: ['0001', '0002'],
      activeBundle: '0001',
    });
    // One blob for the two attachments with the same bytes, none for the deleted one.
    expect(existsSync(blobFile(target, hashes['photo.jpg']!))).toBe(true);
    expect(existsSync(blobFile(target, hashes['gone.txt']!))).toBe(false);
    expect(statSync(target).mode & 0o077).toBe(0);
    // Nothing but the backup beside it.
    expect(readdirSync(parent).filter((name) => name.includes('.partial-'))).toEqual([]);

    const config = loadConfig({ DATA_DIR: target, ADMIN_PASSWORD });
    const restored = await createContext(config, createLogger('silent'));
    try {
      const app = createApp(restored);
      // The original's token: the signing secret came along, and so did the sessions.
      expect(await pullAll(app, admin)).toEqual(await pullAll(t.app, admin));
      const photo = await request(app).get('/attachments/copy.jpg').set('authorization', admin);
      expect([photo.status, photo.body.toString()]).toEqual([200, 'jpeg bytes']);
      expect((await request(app).get('/attachments/gone.txt').set('authorization', admin)).status).toBe(404);
      const manifest = (authorization: string, a: TestApp['app']) =>
        request(a).get('/app-bundle/manifest?preview=true').set('authorization', authorization);
      expect((await manifest(admin, app)).body).toEqual((await manifest(admin, t.app)).body);
      const index = await request(app)
        .get('/app-bundle/download/app%2Findex.html')
        .set('authorization', admin);
      expect(index.text).toBe('<p>one</p>');
      // The restored server goes on where the original was: the next change gets the next version.
      const push = await request(app)
        .post('/sync/push')
        .set('authorization', admin)
        .send({
          transmission_id: randomUUID(),
          client_id: 'phone',
          records: [{ observation_id: 'after', form_type: 'household', data: {} }],
        });
      const original = await request(t.app)
        .post('/sync/pull')
        .set('authorization', admin)
        .send({ client_id: 'backup-check' });
      // Far past what the original may have handed out after the backup: a device whose cursor is
      // past the backup still pulls every change made after the restore.
      expect(push.body.current_version).toBe(original.body.current_version + RESTORE_VERSION_GAP + 1);
      const device = await request(app)
        .post('/sync/pull')
        .set('authorization', admin)
        .send({ client_id: 'synced-after-backup', since: { version: original.body.current_version + 500 } });
      expect(device.body.records.map((r: { observation_id: string }) => r.observation_id)).toEqual(['after']);
    } finally {
      await closeContext(restored);
    }
  });

  it('never writes over an existing directory, and refuses PostgreSQL with what to do instead', async () => {
    const existing = path.join(parent, 'existing');
    writeFileSync(path.join(parent, 'marker'), 'x');
    await expect(backupData(t.ctx.config, parent)).rejects.toThrow(/already exists/);
    rmSync(path.join(parent, 'marker'));
    const pg = loadConfig({ DATA_DIR: t.dataDir, DB_CONNECTION: 'postgres://u:p@127.0.0.1:1/db' });
    await expect(backupData(pg, existing)).rejects.toThrow(/pg_dump/);
    expect(existsSync(existing)).toBe(false);
  });

  it('stops at a damaged attachment file, names it, and leaves nothing behind', async () => {
    const file = blobFile(t.dataDir, hashes['photo.jpg']!);
    const target = path.join(parent, 'backup-damaged');
    writeFileSync(file, 'jpeg bytez'); // bit rot: same size, other bytes
    try {
      const err = await backupData(t.ctx.config, target).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackupError);
      expect((err as Error).message).toMatch(/attachment (photo|copy)\.jpg is damaged/);
      rmSync(file);
      // A file the database names but nobody has (deleted behind the server's back): it is not
      // taken for one deleted during the backup for ever; after a few snapshots the backup stops.
      await expect(backupData(t.ctx.config, target)).rejects.toThrow(
        /names files that are not in the data directory: attachment copy\.jpg, attachment photo\.jpg/,
      );
      expect(existsSync(target)).toBe(false);
      expect(readdirSync(parent).filter((name) => name.includes('.partial-'))).toEqual([]);
    } finally {
      writeFileSync(file, 'jpeg bytes');
    }
  });

  it('runs as `npm run backup -- <dir>` with the server’s configuration, and explains its usage', async () => {
    const target = path.join(parent, 'backup-cli');
    const env = { ...process.env, DATA_DIR: t.dataDir, DB_CONNECTION: path.join(parent, 'elsewhere.db') };
    const script = path.resolve(import.meta.dirname, '../src/backup-main.ts');
    const { stdout } = await run(process.execPath, [script, target], { env });
    expect(stdout).toMatch(
      /^Backed up into .*: 30 records, 2 attachments \(0\.0 MiB\), app bundle versions 0001, 0002 \(active 0001\)/,
    );
    expect(existsSync(path.join(target, 'synkronus.db'))).toBe(true);
    const usage = await run(process.execPath, [script], { env }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(usage).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/usage: npm run backup -- <new directory>/),
    });
    const again = await run(process.execPath, [script, target], { env }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(again).toMatchObject({ code: 1, stderr: expect.stringMatching(/already exists/) });
  });
});
