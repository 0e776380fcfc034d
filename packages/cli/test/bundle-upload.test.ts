import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loopbackServer } from '@synk/test-support/hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { synk, workDir } from './run-cli.ts';

/** The URLs of the bundle pushes the server received. */
const pushes: string[] = [];
const server = loopbackServer(async (req, res) => {
  for await (const _ of req);
  const json = (body: unknown) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (req.url === '/auth/login')
    return json({ token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 });
  pushes.push(req.url ?? '');
  json({
    message: 'App bundle successfully pushed',
    manifest: { files: [], version: '0002', generatedAt: new Date().toISOString(), hash: 'h' },
  });
});

const cwd = workDir();
const as = () => ['--server', server.base];

describe('app-bundle upload', () => {
  beforeAll(async () => {
    const login = await synk(cwd, [...as(), 'login', '--username', 'admin', '--password', 'admin-password']);
    expect(login.code, login.stderr).toBe(0);
  });

  it('asks for activate and retire_forms only when told to', async () => {
    const zip = path.join(cwd, 'bundle.zip');
    writeFileSync(zip, 'PK');
    for (const flags of [[], ['--activate'], ['--retire-forms'], ['--activate', '--retire-forms']]) {
      const res = await synk(cwd, [...as(), 'app-bundle', 'upload', zip, ...flags]);
      expect(res.code, res.stderr).toBe(0);
    }
    expect(pushes).toEqual([
      '/app-bundle/push',
      '/app-bundle/push?activate=true',
      '/app-bundle/push?retire_forms=true',
      '/app-bundle/push?activate=true&retire_forms=true',
    ]);
  });
});
