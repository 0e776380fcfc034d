import { writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it } from 'vitest';
import { synk, workDir } from './run-cli.ts';

const cwd = workDir();

describe('errors say what failed', () => {
  it('a refused connection names the request and the reason, not just "fetch failed"', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve)); // connections to it are refused
    const res = await synk(cwd, ['--server', `http://127.0.0.1:${port}`, 'version']);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      `Cannot reach the server: GET http://127.0.0.1:${port}/version failed: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    );
  });

  it('a push file that is not JSON, or holds no records, is named (no TypeError)', async () => {
    const cases: [string, string, RegExp][] = [
      ['null.json', 'null', /^Error: .*null\.json holds no array of records/],
      ['number.json', '7', /^Error: .*number\.json holds no array of records/],
      ['object.json', '{"records": 3}', /^Error: .*object\.json holds no array of records/],
      ['broken.json', '[{"observation_id": ', /^Error: .*broken\.json: not valid JSON: /],
    ];
    for (const [name, text, message] of cases) {
      const file = path.join(cwd, name);
      writeFileSync(file, text);
      const res = await synk(cwd, ['--server', 'http://127.0.0.1:1', 'sync', 'push', file]);
      expect(res.code, name).toBe(1);
      expect(res.stderr).toMatch(message);
      expect(res.stderr.split('\n')).toHaveLength(2);
    }
  });
});

describe('health against a server that is not synk', () => {
  // Another web server: its own page for /health, or a gateway's error page under /gateway.
  const server = loopbackServer((req, res) => {
    const status = req.url?.startsWith('/gateway/') ? 502 : 200;
    res.writeHead(status, { 'content-type': 'text/html' }).end('<html><body><h1>Welcome</h1></body></html>');
  });

  it.each([
    ['', 200],
    ['/gateway', 502],
  ])('%s answering %i: one line on stderr, nothing on stdout, exit 1', async (prefix, status) => {
    const res = await synk(cwd, ['--server', `${server.base}${prefix}`, 'health']);
    expect(res).toEqual({
      code: 1,
      stdout: '',
      stderr: `Error: ${server.base}${prefix} did not answer GET /health as a synk server does (HTTP ${status}${status === 200 ? '' : ', text/html'})\n`,
    });
  });
});

describe('a refusal that says when to come back', () => {
  // A server throttling everything, as one does logins after too many failed attempts.
  const server = loopbackServer((_req, res) => {
    res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '840' }).end(
      JSON.stringify({
        type: 'urn:synk:problem:too_many_requests',
        title: 'Too Many Requests',
        status: 429,
        detail: 'Too many failed logins; try again later',
        code: 'too_many_requests',
      }),
    );
  });

  it.each([
    ['login', ['login', '-u', 'ann', '-p', 'a-password-1']],
    ['any other command', ['users', 'list']],
  ])('%s: names the wait it asks for', async (_label, args) => {
    const res = await synk(cwd, ['--server', server.base, ...args]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      'Error 429 (too_many_requests): Too many failed logins; try again later (retry after 840 s)\n',
    );
  });
});
