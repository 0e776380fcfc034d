import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, utimesSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { SqliteConnection } from '@mikro-orm/sqlite';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportRowsQuery } from '../src/modules/sync/sqlite-export.ts';
import { createTestApp, type TestApp } from './helpers.ts';

let t: TestApp;
let admin: string;
const TYPES = 5;
const exportTemp = () => path.join(t.dataDir, 'tmp', 'exports');

beforeAll(async () => {
  // EXPORT_MAX_COLUMNS: the wide form below gets a column for each of its 30,000 keys.
  t = await createTestApp({
    SYNC_VALIDATION: 'off',
    EXPORT_STALL_TIMEOUT_MS: '1500',
    EXPORT_MAX_COLUMNS: '30000',
  });
  admin = `Bearer ${await t.tokenFor('admin')}`;
  // Several form types, each holding a large share of the records, so a scan writes some of them
  // to temporary files (small types are read on their own); enough data that an
  // export is still running when its client goes away.
  for (let batch = 0; batch < 12; batch++) {
    const records = Array.from({ length: 1000 }, (_, i) => {
      const n = batch * 1000 + i;
      return {
        observation_id: `r-${n}`,
        form_type: `type-${n % TYPES}`,
        data: { n, text: `${n}`.repeat(300) },
      };
    });
    const res = await request(t.app)
      .post('/sync/push')
      .set('authorization', admin)
      .send({ transmission_id: randomUUID(), client_id: 'exports-test', records });
    expect(res.status).toBe(200);
  }
}, 60_000);
afterAll(() => t.close());

describe('export temporary files', () => {
  it('are gone after an export, and ones left by a process that died long ago are removed', async () => {
    const stale = path.join(exportTemp(), 'export-stale');
    mkdirSync(stale, { recursive: true });
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    utimesSync(stale, twoDaysAgo, twoDaysAgo);
    const recent = path.join(exportTemp(), 'export-recent');
    mkdirSync(recent);
    const res = await request(t.app).get('/dataexport/parquet').set('authorization', admin).buffer(true);
    expect(res.status).toBe(200);
    // Another process's export may still be writing `recent`: only the stale one goes.
    expect(readdirSync(exportTemp())).toEqual(['export-recent']);
  });

  it.each(['csv', 'parquet'])(
    'are gone when the client goes away mid-%s-export, and the server goes on serving',
    async (format) => {
      const server = http.createServer(t.app);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      try {
        const sawTempFiles = await new Promise<boolean>((resolve, reject) => {
          const req = http.get(
            { port, host: '127.0.0.1', path: `/dataexport/${format}`, headers: { authorization: admin } },
            (res) => {
              expect(res.statusCode).toBe(200);
              // Read nothing more: the export stalls on its first file with the others' files open.
              res.pause();
              const started = Date.now();
              const poll = setInterval(() => {
                const open = readdirSync(exportTemp()).filter((name) => name !== 'export-recent');
                if (open.length > 0 || Date.now() - started > 10_000) {
                  clearInterval(poll);
                  req.destroy();
                  resolve(open.length > 0);
                }
              }, 20);
            },
          );
          req.on('error', () => {});
          req.setTimeout(30_000, () => reject(new Error('timed out')));
        });
        expect(sawTempFiles).toBe(true);
        const deadline = Date.now() + 10_000;
        while (readdirSync(exportTemp()).some((name) => name !== 'export-recent') && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 20));
        expect(readdirSync(exportTemp())).toEqual(['export-recent']);
        expect((await request(t.app).get('/health')).status).toBe(200);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  );
});

describe('exports running at once', () => {
  it('are limited (503 and Retry-After beyond), a slot freed as an export ends, and a client that stops reading let go', async () => {
    // Random text compresses little: an export of it cannot fit in the sockets' buffers, so one
    // whose client reads nothing really stalls instead of finishing unread.
    for (let batch = 0; batch < 4; batch++) {
      const records = Array.from({ length: 1000 }, (_, i) => ({
        observation_id: `noise-${batch}-${i}`,
        form_type: 'noise',
        data: { text: randomBytes(2400).toString('base64') },
      }));
      const res = await request(t.app)
        .post('/sync/push')
        .set('authorization', admin)
        .send({ transmission_id: randomUUID(), client_id: 'exports-test', records });
      expect(res.status).toBe(200);
    }
    const server = http.createServer(t.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    /**
     * Starts an export whose client reads nothing (it cannot even see the server cut it, since it
     * does not read the socket): its status, and the request to end it with.
     */
    const held = () =>
      new Promise<{ status: number; req: http.ClientRequest }>((resolve, reject) => {
        const req = http.get(
          {
            port,
            host: '127.0.0.1',
            path: '/dataexport/csv?form_type=noise',
            headers: { authorization: admin },
          },
          (res) => {
            res.pause();
            resolve({ status: res.statusCode ?? 0, req });
          },
        );
        req.on('error', () => {});
        req.setTimeout(30_000, () => reject(new Error('timed out')));
      });
    const statusOfAnother = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/dataexport/parquet?form_type=noise`, {
        headers: { authorization: admin },
      });
      if (res.status === 503) {
        expect(res.headers.get('retry-after')).toBe('10');
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(res.headers.get('content-disposition')).toBeNull();
        expect(await res.json()).toMatchObject({ status: 503, code: 'export_busy' });
      } else await res.arrayBuffer();
      return res.status;
    };
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const started: http.ClientRequest[] = [];
    try {
      const first = await held();
      const second = await held(); // the default limit is 2
      started.push(first.req, second.req);
      expect([first.status, second.status]).toEqual([200, 200]);
      expect(await statusOfAnother()).toBe(503);
      // A HEAD runs no export: it takes no slot, and gets the headers a GET would.
      const head = await fetch(`http://127.0.0.1:${port}/dataexport/parquet?form_type=noise`, {
        method: 'HEAD',
        headers: { authorization: admin },
      });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toBe('application/zip');
      expect(head.headers.get('content-disposition')).toBe('attachment; filename="observations_export.zip"');
      await pause(300); // stalled, not finishing unread
      expect(await statusOfAnother()).toBe(503);

      // The client of one goes away: its slot is free again, and only its slot.
      first.req.destroy();
      let status = await statusOfAnother();
      for (const deadline = Date.now() + 10_000; status !== 200 && Date.now() < deadline; ) {
        await pause(20);
        status = await statusOfAnother();
      }
      expect(status).toBe(200);
      const third = await held();
      started.push(third.req);
      expect(third.status).toBe(200);
      expect(await statusOfAnother()).toBe(503);

      // Those two read nothing: after EXPORT_STALL_TIMEOUT_MS (1.5 s here) the server lets both
      // go, so two exports can run at once again.
      let both = false;
      for (const deadline = Date.now() + 10_000; !both && Date.now() < deadline; ) {
        await pause(100);
        const pair = [await held(), await held()];
        started.push(...pair.map((p) => p.req));
        both = pair.every((p) => p.status === 200);
        for (const p of pair) p.req.destroy();
      }
      expect(both).toBe(true);
    } finally {
      for (const req of started) req.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('a form with tens of thousands of columns', () => {
  it('is read a few records at a time, every value in its column', async () => {
    const keysPerRecord = 100;
    const records = Array.from({ length: 300 }, (_, n) => {
      const data: Record<string, number> = {};
      // 30,000 distinct keys over the form's records, 100 per record.
      for (let k = 0; k < keysPerRecord; k++) data[`k${n * keysPerRecord + k}`] = n * 1000 + k;
      return { observation_id: `wide-${n}`, form_type: 'wide', data };
    });
    const res = await request(t.app)
      .post('/sync/push')
      .set('authorization', admin)
      .send({ transmission_id: randomUUID(), client_id: 'exports-test', records });
    expect(res.status).toBe(200);
    const csv = await getBytes('/dataexport/csv?form_type=wide');
    expect(csv.status).toBe(200);
    const text = await onlyEntry(csv.body as Buffer);
    const [header, ...lines] = text.trimEnd().split('\r\n');
    const columns = header!.split(',');
    expect(lines).toHaveLength(records.length);
    for (const [i, line] of lines.entries()) {
      const cells = line.split(',');
      const { observation_id, data } = records[i]!;
      expect(cells[0]).toBe(observation_id);
      const filled = Object.fromEntries(
        cells.flatMap((cell, c) =>
          c > 8 && cell !== '' ? [[columns[c]!.slice('data_'.length), Number(cell)]] : [],
        ),
      );
      expect(filled).toEqual(data);
    }
  });
});

describe('export reads on SQLite', () => {
  it('read one form type through the form-type index, several in version order with the others filtered out', async () => {
    const db = await (t.ctx.orm.em.getConnection() as unknown as SqliteConnection).getNativeClient();
    const plan = (formTypes: string[]) => {
      const { sql, params } = exportRowsQuery(
        formTypes,
        { formTypes: null, sinceVersion: 0, includeDeleted: false },
        0,
        500,
      );
      const steps = db.prepare(`explain query plan ${sql}`).all(...params) as { detail: string }[];
      return steps.map((step) => step.detail).join('; ');
    };
    // Only its own records are read (thousands of small types were each a read of the whole table).
    expect(plan(['type-1'])).toMatch(
      /^SEARCH observations USING INDEX observations_form_type_version_index \(form_type=\? AND version>\?\)$/,
    );
    // Through the form-type index, a list would come out of version order and be sorted per read.
    expect(plan(['type-1', 'type-2'])).toMatch(
      /^SEARCH observations USING INDEX observations_version_unique/,
    );
  });
});

/** A GET as the admin, its body as bytes (a ZIP). */
function getBytes(path: string) {
  return request(t.app)
    .get(path)
    .set('authorization', admin)
    .buffer(true)
    .parse((response, done) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => done(null, Buffer.concat(chunks)));
    });
}

/** The text of a ZIP's only entry. */
async function onlyEntry(zip: Buffer): Promise<string> {
  const { default: unzipper } = await import('unzipper');
  const directory = await unzipper.Open.buffer(zip);
  expect(directory.files).toHaveLength(1);
  return (await directory.files[0]!.buffer()).toString('utf8');
}

describe('records of ~1 MB', () => {
  it('are all exported whole, though each read holds only ~16 MiB of them', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `large-${i}`);
    for (const half of [ids.slice(0, 10), ids.slice(10)]) {
      const res = await request(t.app)
        .post('/sync/push')
        .set('authorization', admin)
        .send({
          transmission_id: randomUUID(),
          client_id: 'exports-test',
          records: half.map((id, i) => ({
            observation_id: id,
            form_type: 'large',
            data: { i, text: 'y'.repeat(1_000_000) },
          })),
        });
      expect(res.status).toBe(200);
    }
    const csv = await getBytes('/dataexport/csv?form_type=large');
    expect(csv.status).toBe(200);
    const lines = (await onlyEntry(csv.body as Buffer)).trimEnd().split('\r\n').slice(1);
    expect(lines.map((line) => line.split(',')[0])).toEqual(ids);
    expect(lines.every((line) => line.endsWith(`,${'y'.repeat(1_000_000)}`))).toBe(true);
  });
});
