import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it } from 'vitest';
import { createClient } from '../src/client.ts';
import { MemoryStorage } from '../src/storage.ts';

const session = { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 };
const PAGE =
  '{"current_version":1,"records":[{"observation_id":"m1","form_type":"meter","data":{"serial":12345678901234567891},"synced_at":"2026-01-01T00:00:00Z","deleted":false,"version":1,"hash":"' +
  'a'.repeat(64) +
  '","last_modified_by":"u","origin_client_id":"c"}],"change_cutoff":1,"has_more":false,"sync_format_version":"1.0","server_time":"2026-01-01T00:00:00Z"}';

const server = loopbackServer(async (req, res) => {
  for await (const _ of req);
  res.writeHead(200, { 'content-type': 'application/json' }).end(PAGE);
});

async function pulledData(exactNumbers: boolean) {
  const client = createClient({ baseUrl: server.base, tokens: session, exactNumbers });
  const { data } = await client.api.POST('/sync/pull', { body: { client_id: 'c' } });
  return data!.records[0]!.data;
}

describe('exactNumbers', () => {
  it('keeps an integer too long for a double digit for digit; without it, it is the nearest number', async () => {
    expect(JSON.stringify(await pulledData(true))).toBe('{"serial":12345678901234567891}');
    expect(await pulledData(false)).toEqual({ serial: Number('12345678901234567891') });
  });

  it('MemoryStorage keeps such integers with exactNumbers, and gives numbers without', async () => {
    const exact = new MemoryStorage({ exactNumbers: true });
    const plain = new MemoryStorage();
    const record = {
      serial: (JSON as unknown as { rawJSON(t: string): unknown }).rawJSON('12345678901234567891'),
    };
    await exact.set('r', record);
    await plain.set('r', record);
    expect(JSON.stringify(await exact.get('r'))).toBe('{"serial":12345678901234567891}');
    expect(await plain.get('r')).toEqual({ serial: Number('12345678901234567891') });
  });
});
