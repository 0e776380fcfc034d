import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { databaseFactory } from '@synk/test-support/postgres';
import { adminToken as serverAdminToken, startServerProcess } from '@synk/test-support/server-process';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import unzipper from 'unzipper';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { send, userWithRole } from '../src/http.ts';
import { push } from '../src/sync.ts';

const target = useTarget();
let reader: { token: string };

/** Reads a ZIP response into {name → bytes}. */
async function unzip(res: Response): Promise<Map<string, Buffer>> {
  const directory = await unzipper.Open.buffer(Buffer.from(await res.arrayBuffer()));
  const files = new Map<string, Buffer>();
  for (const file of directory.files) files.set(file.path, await file.buffer());
  return files;
}

const arrayBuffer = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

async function readParquet(bytes: Buffer) {
  const file = arrayBuffer(bytes);
  const metadata = parquetMetadata(file);
  const columns = metadata.schema
    .slice(1)
    .map((s) => ({ name: s.name, type: s.type, converted: s.converted_type ?? null }));
  const rows = (await parquetReadObjects({ file })) as Record<string, unknown>[];
  return { columns, rows };
}

/**
 * A second independent reader: DuckDB (its own C++ Parquet reader) reads the file and gives every
 * row, values as hyparquet gives them (INT64 as bigint), so the two can be compared whole.
 */
async function readWithDuckdb(bytes: Buffer): Promise<Record<string, unknown>[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'synk-duckdb-'));
  try {
    const file = path.join(dir, 'export.parquet');
    writeFileSync(file, bytes);
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    const result = await connection.runAndReadAll(`select * from read_parquet('${file}')`);
    const rows = result.getRowObjectsJS() as Record<string, unknown>[];
    connection.closeSync();
    db.closeSync();
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const exportPath = (format: string, query = '') => `/dataexport/${format}${query}`;
const fetchExport = (format: string, query = '') =>
  send(target, exportPath(format, query), { headers: { authorization: `Bearer ${reader.token}` } });

const geo = { latitude: 1.5, longitude: 2.5, accuracy: 3 };
beforeAll(async () => {
  const writer = await userWithRole(target, 'read-write');
  reader = await userWithRole(target, 'read-only');
  const res = await push(target, writer.token, [
    {
      observation_id: 'h1',
      form_type: 'household',
      form_version: '2',
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-02T00:00:00Z',
      geolocation: geo,
      data: {
        count: 3,
        ratio: 0.5,
        ok: true,
        name: 'Ama',
        mixed: 1,
        nested: { a: [1, 2] },
        'key with "quotes", spaces-and-dashes': 'x',
        ключ: 'значение',
        'dotted.key': 7,
      },
    },
    {
      observation_id: 'h2',
      form_type: 'household',
      data: {
        count: 4,
        ratio: 2,
        ok: false,
        name: 'Kofi',
        mixed: 'one',
        nested: null,
        big: 9007199254740991,
      },
    },
    { observation_id: 'h3', form_type: 'household', data: {}, deleted: true },
    { observation_id: 's1', form_type: 'a/b', data: { x: 1 } },
    { observation_id: 's2', form_type: 'a:b', data: { y: 'two' } },
    { observation_id: 'q1', form_type: 'we"ird<>|?*', data: { z: true } },
  ]);
  expect(res.body.success_count).toBe(6);
});

describe('GET /dataexport/parquet', () => {
  it('streams a ZIP of one Parquet file per form type with sanitised, collision-safe names', async () => {
    const res = await fetchExport('parquet');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="observations_export.zip"');
    const files = await unzip(res);
    expect([...files.keys()].sort()).toEqual([
      'a_b.parquet',
      'a_b_2.parquet',
      'household.parquet',
      'we_ird_____.parquet',
    ]);
  });

  it('has the base columns then data_<key> sorted, typed by the rules, every value read back by hyparquet and DuckDB', async () => {
    const files = await unzip(await fetchExport('parquet'));
    const { columns, rows } = await readParquet(files.get('household.parquet')!);
    for (const bytes of files.values()) {
      const { rows: hyparquetRows } = await readParquet(bytes);
      expect(await readWithDuckdb(bytes)).toEqual(hyparquetRows);
    }
    expect(columns.map((c) => c.name)).toEqual([
      ...BASE_COLUMN_NAMES,
      'data_big',
      'data_count',
      'data_dotted.key',
      'data_key with "quotes", spaces-and-dashes',
      'data_mixed',
      'data_name',
      'data_nested',
      'data_ok',
      'data_ratio',
      'data_ключ',
    ]);
    const typeOf = (name: string) => columns.find((c) => c.name === name)!.type;
    expect(typeOf('data_count')).toBe('INT64');
    expect(typeOf('data_big')).toBe('INT64');
    expect(typeOf('data_ratio')).toBe('DOUBLE');
    expect(typeOf('data_ok')).toBe('BOOLEAN');
    expect(typeOf('data_name')).toBe('BYTE_ARRAY');
    expect(typeOf('data_mixed')).toBe('BYTE_ARRAY');
    expect(typeOf('version')).toBe('INT64');
    expect(typeOf('deleted')).toBe('BOOLEAN');

    // Deleted records are left out by default.
    expect(rows.map((r) => r.observation_id)).toEqual(['h1', 'h2']);
    const [h1, h2] = rows as [Record<string, unknown>, Record<string, unknown>];
    expect(h1).toMatchObject({
      form_type: 'household',
      form_version: '2',
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-02T00:00:00Z',
      deleted: false,
      data_count: 3n,
      data_ratio: 0.5,
      data_ok: true,
      data_name: 'Ama',
      data_mixed: '1',
      data_nested: '{"a":[1,2]}',
      'data_key with "quotes", spaces-and-dashes': 'x',
      data_ключ: 'значение',
      'data_dotted.key': 7n,
      data_big: null,
    });
    expect(JSON.parse(h1.geolocation as string)).toEqual(geo);
    expect(typeof h1.version).toBe('bigint');
    expect(Number.isNaN(Date.parse(h1.synced_at as string))).toBe(false);
    expect(h2).toMatchObject({
      form_version: null,
      created_at: null,
      geolocation: null,
      data_count: 4n,
      data_ratio: 2,
      data_ok: false,
      data_mixed: '"one"',
      data_nested: null,
      data_big: 9007199254740991n,
      data_ключ: null,
    });
  });

  it('filters: form_type (repeatable), since_version, include_deleted', async () => {
    const only = await unzip(await fetchExport('parquet', '?form_type=a/b&form_type=a:b'));
    expect([...only.keys()].sort()).toEqual(['a_b.parquet', 'a_b_2.parquet']);
    const withDeleted = await unzip(
      await fetchExport('parquet', '?form_type=household&include_deleted=true'),
    );
    const { rows } = await readParquet(withDeleted.get('household.parquet')!);
    expect(rows.map((r) => [r.observation_id, r.deleted])).toEqual([
      ['h1', false],
      ['h2', false],
      ['h3', true],
    ]);
    const all = await readParquet(
      (await unzip(await fetchExport('parquet', '?include_deleted=true'))).get('household.parquet')!,
    );
    const since = Number(all.rows[0]!.version);
    const later = await readParquet(
      (await unzip(await fetchExport('parquet', `?since_version=${since}`))).get('household.parquet')!,
    );
    expect(later.rows.map((r) => r.observation_id)).toEqual(['h2']);
    expect((await fetchExport('parquet', '?since_version=-1')).status).toBe(400);
  });

  it('an empty selection is an empty ZIP', async () => {
    const files = await unzip(await fetchExport('parquet', '?form_type=nothing-here'));
    expect(files.size).toBe(0);
  });

  it('needs authentication', async () => {
    expect((await send(target, exportPath('parquet'))).status).toBe(401);
  });
});

describe('GET /dataexport/csv', () => {
  it('has the same layout with RFC 4180 quoting', async () => {
    const files = await unzip(await fetchExport('csv'));
    expect([...files.keys()].sort()).toEqual(['a_b.csv', 'a_b_2.csv', 'household.csv', 'we_ird_____.csv']);
    const text = files.get('household.csv')!.toString('utf8');
    const lines = text.split('\r\n');
    expect(lines[0]).toBe(
      'observation_id,form_type,form_version,created_at,updated_at,synced_at,deleted,version,geolocation,data_big,data_count,data_dotted.key,"data_key with ""quotes"", spaces-and-dashes",data_mixed,data_name,data_nested,data_ok,data_ratio,data_ключ',
    );
    expect(lines[1]).toMatch(
      /^h1,household,2,2026-01-01T00:00:00Z,2026-01-02T00:00:00Z,[^,]+,false,\d+,"\{""latitude"":1.5,""longitude"":2.5,""accuracy"":3\}",,3,7,x,1,Ama,"\{""a"":\[1,2\]\}",true,0.5,значение$/,
    );
    expect(lines[2]).toMatch(
      /^h2,household,,,,[^,]+,false,\d+,,9007199254740991,4,,,"""one""",Kofi,,false,2,$/,
    );
    expect(lines[3]).toBe('');
  });
});

describe('CSV empty strings and missing values', () => {
  it('writes an empty string as "" and a missing value as an empty field', async () => {
    const writer = await userWithRole(target, 'read-write');
    const res = await push(target, writer.token, [
      { observation_id: 'csv-e1', form_type: 'csv-empty', data: { note: '' } },
      { observation_id: 'csv-e2', form_type: 'csv-empty', data: {} },
      { observation_id: 'csv-e3', form_type: 'csv-empty', data: { note: null } },
    ]);
    expect(res.status).toBe(200);
    const files = await unzip(await fetchExport('csv', '?form_type=csv-empty'));
    const lines = files.get('csv-empty.csv')!.toString('utf8').trimEnd().split('\r\n');
    expect(lines[0]!.endsWith(',data_note')).toBe(true);
    expect(lines.slice(1).map((line) => [line.split(',')[0], line.slice(line.lastIndexOf(',') + 1)])).toEqual(
      [
        ['csv-e1', '""'],
        ['csv-e2', ''],
        ['csv-e3', ''],
      ],
    );
  });
});

describe('keys written with escapes (nodejs/node#63785)', () => {
  it('export them exactly, also after a key that trips V8’s parser', async () => {
    const writer = await userWithRole(target, 'read-write');
    // Each record's data is parsed on its own while exporting; `!` sorts first, keeping the trigger's shape.
    const sent = [
      { '!': [1], '\\': 0 },
      { '!': 2, '"': 'quote' },
    ];
    for (const [i, data] of sent.entries()) {
      const res = await push(target, writer.token, [
        { observation_id: `esc-${i}`, form_type: 'escaped-keys', data },
      ]);
      expect(res.status).toBe(200);
    }
    const files = await unzip(await fetchExport('parquet', '?form_type=escaped-keys'));
    const { columns, rows } = await readParquet(files.get('escaped-keys.parquet')!);
    expect(columns.map((c) => c.name).filter((n) => n.startsWith('data_'))).toEqual([
      'data_!',
      'data_"',
      'data_\\',
    ]);
    expect(rows.map((r) => [r['data_!'], r['data_"'], r['data_\\']])).toEqual([
      ['[1]', null, 0n],
      ['2', 'quote', null],
    ]);
  });
});

describe('integers beyond ±(2^53 − 1) in data', () => {
  // id: integers within INT64, some no double holds → INT64, exact. serial: one beyond INT64 →
  // text. reading: a fraction and an integer no double holds → text. level: a fraction and an
  // integer a double holds exactly (2^60) → still DOUBLE. big: integers, one beyond INT64 that a
  // double holds exactly (10^20) → DOUBLE, as before. nested: JSON text with its digits.
  const records: Record<string, string>[] = [
    {
      big: '100000000000000000000',
      id: '1234567890123456789',
      serial: '12345678901234567891',
      reading: '0.5',
      level: '0.25',
      nested: '{"id":98765432109876543210}',
    },
    {
      big: '3',
      id: '-9223372036854775808',
      serial: '7',
      reading: '9007199254740993',
      level: '1152921504606846976',
      nested: '[-12345678901234567890,1.5]',
    },
    { id: '9223372036854775807', serial: '-9223372036854775809' },
    { id: '42' },
  ];

  beforeAll(async () => {
    const writer = await userWithRole(target, 'read-write');
    // Written as JSON text: JSON.stringify would write each integer as the nearest double.
    const dataText = (data: Record<string, string>) =>
      `{${Object.entries(data)
        .map(([key, value]) => `"${key}":${value}`)
        .join(',')}}`;
    const res = await send(target, '/sync/push', {
      method: 'POST',
      headers: { authorization: `Bearer ${writer.token}`, 'content-type': 'application/json' },
      body: `{"transmission_id":"${randomUUID()}","client_id":"long-integers","records":[${records
        .map(
          (data, i) => `{"observation_id":"long-${i}","form_type":"long-integers","data":${dataText(data)}}`,
        )
        .join(',')}]}`,
    });
    expect(res.status).toBe(200);
    expect((await res.json()).success_count).toBe(records.length);
  });

  it('Parquet: INT64 holds them exactly; a column no number type holds exactly is text with the digits', async () => {
    const files = await unzip(await fetchExport('parquet', '?form_type=long-integers'));
    const bytes = files.get('long-integers.parquet')!;
    const { columns, rows } = await readParquet(bytes);
    expect(await readWithDuckdb(bytes)).toEqual(rows);
    expect(columns.filter((c) => c.name.startsWith('data_'))).toEqual([
      { name: 'data_big', type: 'DOUBLE', converted: null },
      { name: 'data_id', type: 'INT64', converted: null },
      { name: 'data_level', type: 'DOUBLE', converted: null },
      { name: 'data_nested', type: 'BYTE_ARRAY', converted: 'UTF8' },
      { name: 'data_reading', type: 'BYTE_ARRAY', converted: 'UTF8' },
      { name: 'data_serial', type: 'BYTE_ARRAY', converted: 'UTF8' },
    ]);
    expect(
      rows.map((r) => [r.data_id, r.data_serial, r.data_reading, r.data_level, r.data_big, r.data_nested]),
    ).toEqual([
      [1234567890123456789n, '12345678901234567891', '0.5', 0.25, 1e20, '{"id":98765432109876543210}'],
      [-9223372036854775808n, '7', '9007199254740993', 2 ** 60, 3, '[-12345678901234567890,1.5]'],
      [9223372036854775807n, '-9223372036854775809', null, null, null, null],
      [42n, null, null, null, null, null],
    ]);
  });

  it('CSV: every cell holds the digits as pushed', async () => {
    const files = await unzip(await fetchExport('csv', '?form_type=long-integers'));
    const [header, ...lines] = parseCsv(files.get('long-integers.csv')!.toString('utf8'));
    const data = header!.slice(BASE_COLUMN_NAMES.length);
    expect(data).toEqual(['data_big', 'data_id', 'data_level', 'data_nested', 'data_reading', 'data_serial']);
    expect(lines.map((cells) => cells.slice(BASE_COLUMN_NAMES.length))).toEqual(
      records.map((r) => data.map((name) => r[name.slice('data_'.length)] ?? '')),
    );
  });
});

describe('filters on their edges', () => {
  it('a form type whose records are all deleted is absent unless include_deleted; bad since_version is 400', async () => {
    const writer = await userWithRole(target, 'read-write');
    const gone = { observation_id: 'gone-1', form_type: 'all-deleted', data: { a: 1 } };
    await push(target, writer.token, [gone]);
    const res = await push(target, writer.token, [{ ...gone, deleted: true }]);
    expect(res.status).toBe(200);
    expect([...(await unzip(await fetchExport('parquet', '?form_type=all-deleted'))).keys()]).toEqual([]);
    const withDeleted = await unzip(
      await fetchExport('parquet', '?form_type=all-deleted&include_deleted=true'),
    );
    const { rows } = await readParquet(withDeleted.get('all-deleted.parquet')!);
    expect(rows.map((r) => [r.observation_id, r.deleted])).toEqual([['gone-1', true]]);
    expect([...(await unzip(await fetchExport('parquet', '?since_version=999999999'))).keys()]).toEqual([]);
    for (const bad of ['abc', '1.5'])
      expect((await fetchExport('parquet', `?since_version=${bad}`)).status).toBe(400);
    // No form type can hold a NUL (it was a 500 on PostgreSQL).
    for (const format of ['parquet', 'csv'])
      expect((await fetchExport(format, '?form_type=a%00b')).status).toBe(400);
  });
});

describe('many form types (large ones a few per scan, small ones each on its own)', () => {
  it('puts every record once in its own file, in version order, with its values', async () => {
    const writer = await userWithRole(target, 'read-write');
    const TYPES = 13;
    const formType = (t: number) => `many-${String(t).padStart(2, '0')}`;
    // Interleaved, as records of different forms arrive: types 0–4 hold 66 records each (over a
    // sixth of the 360: scans shared by four, the others via temporary files), types 5–12 three
    // or four each (each read on its own). Each type has its own key too, so a record written
    // into another type's file would show.
    const typeOf = (i: number) => (i % 12 < 11 ? i % 5 : 5 + (Math.floor(i / 12) % 8));
    const records = Array.from({ length: 360 }, (_, i) => ({
      observation_id: `many-${i}`,
      form_type: formType(typeOf(i)),
      data: { i, [`only_${typeOf(i)}`]: `t${typeOf(i)}`, text: 'x'.repeat(i % 50) },
    }));
    for (let i = 0; i < records.length; i += 120) {
      const res = await push(target, writer.token, records.slice(i, i + 120));
      expect(res.status).toBe(200);
    }
    const query = `?${Array.from({ length: TYPES }, (_, t) => `form_type=${formType(t)}`).join('&')}`;
    const parquet = await unzip(await fetchExport('parquet', query));
    const csv = await unzip(await fetchExport('csv', query));
    expect([...parquet.keys()].sort()).toEqual(
      Array.from({ length: TYPES }, (_, t) => `${formType(t)}.parquet`),
    );
    for (let t = 0; t < TYPES; t++) {
      const expected = records.filter((r) => r.form_type === formType(t));
      const { columns, rows } = await readParquet(parquet.get(`${formType(t)}.parquet`)!);
      expect(await readWithDuckdb(parquet.get(`${formType(t)}.parquet`)!)).toEqual(rows);
      expect(columns.map((c) => c.name).filter((n) => n.startsWith('data_'))).toEqual([
        'data_i',
        `data_only_${t}`,
        'data_text',
      ]);
      expect(rows.map((r) => [r.observation_id, r.data_i, r[`data_only_${t}`], r.data_text])).toEqual(
        expected.map((r) => [r.observation_id, BigInt(r.data.i), `t${t}`, r.data.text]),
      );
      const versions = rows.map((r) => Number(r.version));
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
      const lines = csv
        .get(`${formType(t)}.csv`)!
        .toString('utf8')
        .trimEnd()
        .split('\r\n');
      expect(lines.slice(1).map((line) => line.split(',')[0])).toEqual(expected.map((r) => r.observation_id));
    }
  });
});

describe('form_type in the query', () => {
  it('form_type is read as sent (allowReserved): a raw + is a plus, percent-escapes are decoded', async () => {
    const writer = await userWithRole(target, 'read-write');
    const res = await push(target, writer.token, [
      { observation_id: 'plus-1', form_type: 'x+y', data: { a: 1 } },
      { observation_id: 'space-1', form_type: 'x y', data: { a: 2 } },
    ]);
    expect(res.body.success_count).toBe(2);
    // fetch, not send(): the query must reach the server byte for byte (a client that builds the
    // query from decoded values would re-encode the +).
    const raw = async (query: string) => {
      const response = await fetch(target.url(exportPath('csv', query)), {
        headers: { authorization: `Bearer ${reader.token}` },
      });
      expect(response.status).toBe(200);
      return [...(await unzip(response)).keys()];
    };
    expect(await raw('?form_type=x+y')).toEqual(['x+y.csv']);
    expect(await raw('?form_type=x%2By')).toEqual(['x+y.csv']);
    expect(await raw('?form_type=x%20y')).toEqual(['x y.csv']);
    expect(await raw('?form_type=x+y&form_type=x%20y')).toEqual(['x y.csv', 'x+y.csv']);
    expect(await raw('?since_version=0&form_type=x+y&include_deleted=true')).toEqual(['x+y.csv']);
    expect([...(await unzip(await fetchExport('parquet', '?form_type=x%2By'))).keys()]).toEqual([
      'x+y.parquet',
    ]);
  });
});

describe('ZIP entry names', () => {
  it('have no control characters, and form types that map to one name still get an entry each', async () => {
    const writer = await userWithRole(target, 'read-write');
    const formTypes = ['ctl\r\n', 'x\u0001y', 'x\u001fy', 'x_y', 'del\u007f', 'c1\u0085\u009f'];
    const res = await push(
      target,
      writer.token,
      formTypes.map((formType, i) => ({ observation_id: `ctl-${i}`, form_type: formType, data: { i } })),
    );
    expect(res.body.success_count).toBe(formTypes.length);
    const query = `?${formTypes.map((t) => `form_type=${encodeURIComponent(t)}`).join('&')}`;
    for (const format of ['parquet', 'csv']) {
      const files = await unzip(await fetchExport(format, query));
      expect([...files.keys()].sort()).toEqual(
        ['c1__', 'ctl__', 'del_', 'x_y', 'x_y_2', 'x_y_3'].map((name) => `${name}.${format}`),
      );
      // Each entry holds the records of one form type, and every form type is in one of them.
      const found = new Map<string, string>();
      for (const [name, bytes] of files) {
        const formTypesIn =
          format === 'parquet'
            ? (await readParquet(bytes)).rows.map((r) => r.form_type as string)
            : [...bytes.toString('utf8').matchAll(/\r\nctl-(\d+),/g)].map((m) => formTypes[Number(m[1])]);
        expect(formTypesIn).toHaveLength(1);
        found.set(formTypesIn[0]!, name);
      }
      expect([...found.keys()].sort()).toEqual([...formTypes].sort());
    }
  });
});

describe('a form with more data keys than EXPORT_MAX_COLUMNS', () => {
  /** `k00000` … : zero-padded, so the keys sort as they are numbered. */
  const key = (i: number) => `k${String(i).padStart(5, '0')}`;
  /** Key i's value: an integer, a string, a boolean or a nested object, by i % 4. */
  const valueAt = (i: number) => [i, `s${i}`, i % 8 === 2, { n: i }][i % 4];
  const KEYS = 50_000;
  const MAX_COLUMNS = 2000; // the default
  const wide = Object.fromEntries(Array.from({ length: KEYS }, (_, i) => [key(i), valueAt(i)]));
  const narrow = { a: 'first', [key(2)]: false, [key(KEYS - 1)]: 'last', zzz: null };

  /** A Parquet or CSV cell of value `v`, as hyparquet gives it back. */
  const parquetCell = (v: unknown) =>
    typeof v === 'number' ? BigInt(v) : typeof v === 'object' && v !== null ? JSON.stringify(v) : v;

  it('is exported in bounded memory: the first keys in sort order get a column each, the rest of each record goes into other_data, every value read back', async () => {
    // A server process of its own, as production starts it, so its memory can be watched.
    const pgUrl = inject('pgUrl');
    const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-wide-'));
    const password = 'wide-admin-password';
    const server = await startServerProcess({
      NODE_ENV: 'production',
      DATA_DIR: dataDir,
      ADMIN_PASSWORD: password,
      ...(pgUrl ? { DB_CONNECTION: await databaseFactory(pgUrl)('synk_wide') } : {}),
    });
    try {
      const token = await serverAdminToken(server.url, password);
      const pushed = await fetch(`${server.url}/sync/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({
          transmission_id: randomUUID(),
          client_id: 'wide',
          records: [
            { observation_id: 'wide-1', form_type: 'wide', data: wide },
            { observation_id: 'wide-2', form_type: 'wide', data: narrow },
          ],
        }),
      });
      expect((await pushed.json()).success_count).toBe(2);

      const exportOf = async (format: string) => {
        const idle = rssOf(server.pid);
        let peak = idle;
        const sampler = setInterval(() => {
          peak = Math.max(peak, rssOf(server.pid));
        }, 10);
        try {
          const res = await fetch(`${server.url}/dataexport/${format}`, {
            headers: { authorization: `Bearer ${token}` },
          });
          expect(res.status).toBe(200);
          const files = await unzip(res);
          return { files, added: Math.max(peak, rssOf(server.pid)) - idle };
        } finally {
          clearInterval(sampler);
        }
      };

      const sortedKeys = [...new Set([...Object.keys(wide), ...Object.keys(narrow)])].sort();
      const columnKeys = sortedKeys.slice(0, MAX_COLUMNS);
      const named = new Set(columnKeys);
      const rest = (data: Record<string, unknown>) => {
        const other = Object.fromEntries(Object.entries(data).filter(([k]) => !named.has(k)));
        return Object.keys(other).length > 0 ? other : null;
      };

      const parquet = await exportOf('parquet');
      // One column per key took ~3 GB and 20 s for 200,000 keys; bounded, it takes a few MB.
      expect(parquet.added).toBeLessThan(150 * 2 ** 20);
      const bytes = parquet.files.get('wide.parquet')!;
      const { columns, rows } = await readParquet(bytes);
      expect(await readWithDuckdb(bytes)).toEqual(rows);
      expect(columns.map((c) => c.name)).toEqual([
        ...BASE_COLUMN_NAMES,
        ...columnKeys.map((k) => `data_${k}`),
        'other_data',
      ]);
      expect(columns.at(-1)!.type).toBe('BYTE_ARRAY');
      for (const [i, data] of [wide, narrow].entries()) {
        const row = rows[i]!;
        expect(row.observation_id).toBe(`wide-${i + 1}`);
        for (const k of columnKeys)
          expect(row[`data_${k}`]).toEqual(
            data[k] === undefined || data[k] === null ? null : parquetCell(data[k]),
          );
        const other = row.other_data as string | null;
        expect(other === null ? null : JSON.parse(other)).toEqual(rest(data));
      }

      const csv = await exportOf('csv');
      expect(csv.added).toBeLessThan(150 * 2 ** 20);
      const [header, ...lines] = parseCsv(csv.files.get('wide.csv')!.toString('utf8'));
      expect(header).toEqual([...BASE_COLUMN_NAMES, ...columnKeys.map((k) => `data_${k}`), 'other_data']);
      for (const [i, data] of [wide, narrow].entries()) {
        const cells = lines[i]!;
        expect(cells[0]).toBe(`wide-${i + 1}`);
        columnKeys.forEach((k, c) => {
          const v = data[k];
          const expected =
            v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
          expect(cells[BASE_COLUMN_NAMES.length + c]).toBe(expected);
        });
        const other = cells.at(-1)!;
        expect(other === '' ? null : JSON.parse(other)).toEqual(rest(data));
      }
    } finally {
      await server.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

const BASE_COLUMN_NAMES = [
  'observation_id',
  'form_type',
  'form_version',
  'created_at',
  'updated_at',
  'synced_at',
  'deleted',
  'version',
  'geolocation',
];

/** Resident memory of a process (Linux, from /proc). */
const rssOf = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** RFC 4180 CSV: rows of fields (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let field = '';
    if (text[i] === '"') {
      for (i++; ; ) {
        const quote = text.indexOf('"', i);
        field += text.slice(i, quote);
        i = quote + 1;
        if (text[i] !== '"') break;
        field += '"';
        i++;
      }
    } else {
      const end = text.slice(i).search(/[,\r]/);
      const stop = end < 0 ? text.length : i + end;
      field = text.slice(i, stop);
      i = stop;
    }
    row.push(field);
    if (text[i] === ',') i++;
    else {
      rows.push(row);
      row = [];
      i += 2; // \r\n
    }
  }
  return rows;
}
