import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, utimesSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './helpers.ts';

let t: TestApp;
let admin: string;
const TYPES = 6;
const exportTemp = () => path.join(t.dataDir, 'tmp', 'exports');

beforeAll(async () => {
  t = await createTestApp({ SYNC_VALIDATION: 'off' });
  admin = `Bearer ${await t.tokenFor('admin')}`;
  // Several form types, so a scan writes some of them to temporary files; enough data that an
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
  it('are limited: one more is turned away with 503 and Retry-After until one ends', async () => {
    const server = http.createServer(t.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;
    /** An export whose client reads nothing: it stalls mid-way and keeps running. */
    const held = () =>
      new Promise<http.ClientRequest>((resolve, reject) => {
        const req = http.get(
          { port, host: '127.0.0.1', path: '/dataexport/csv', headers: { authorization: admin } },
          (res) => {
            expect(res.statusCode).toBe(200);
            res.pause();
            resolve(req);
          },
        );
        req.on('error', () => {});
        req.setTimeout(30_000, () => reject(new Error('timed out')));
      });
    try {
      const running = [await held(), await held()]; // the default limit is 2
      const busy = await fetch(`${base}/dataexport/parquet`, { headers: { authorization: admin } });
      expect(busy.status).toBe(503);
      expect(busy.headers.get('retry-after')).toBe('10');
      expect(busy.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(busy.headers.get('content-disposition')).toBeNull();
      expect(await busy.json()).toMatchObject({ status: 503, code: 'export_busy' });

      running[0]!.destroy();
      const deadline = Date.now() + 10_000;
      let next: Response;
      do {
        next = await fetch(`${base}/dataexport/parquet`, { headers: { authorization: admin } });
        if (next.status === 200) break;
        await next.arrayBuffer();
        await new Promise((resolve) => setTimeout(resolve, 20));
      } while (Date.now() < deadline);
      expect(next.status).toBe(200);
      expect((await next.arrayBuffer()).byteLength).toBeGreaterThan(0);
      running[1]!.destroy();
    } finally {
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
    const csv = await request(t.app)
      .get('/dataexport/csv?form_type=wide')
      .set('authorization', admin)
      .buffer(true)
      .parse((response, done) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => done(null, Buffer.concat(chunks)));
      });
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

/** The text of a ZIP's only entry. */
async function onlyEntry(zip: Buffer): Promise<string> {
  const { default: unzipper } = await import('unzipper');
  const directory = await unzipper.Open.buffer(zip);
  expect(directory.files).toHaveLength(1);
  return (await directory.files[0]!.buffer()).toString('utf8');
}
