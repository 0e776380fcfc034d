import { parseJson } from '@synk/json';
import type { components } from '@synk/sdk/node';
import { type Command, Option } from 'commander';
import { CliError, context, ok, output, UsageError, warn } from '../cli.ts';

type Role = components['schemas']['Role'];

/**
 * Who a session is for, read from its access token's claims: the API has no "who am I" operation
 * and the SDK keeps only the tokens. Read, not verified (only the server can verify it).
 */
function sessionUser(token: string): { username: string; role: Role; exp?: number } | undefined {
  try {
    const claims = parseJson(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      username?: unknown;
      role?: unknown;
      exp?: unknown;
    };
    if (typeof claims.username !== 'string' || typeof claims.role !== 'string') return undefined;
    return {
      username: claims.username,
      role: claims.role as Role,
      ...(typeof claims.exp === 'number' ? { exp: claims.exp } : {}),
    };
  } catch {
    return undefined;
  }
}

export function registerSession(program: Command): void {
  program
    .command('login')
    .description('log in and keep the session for this profile and server')
    .option('-u, --username <name>', 'username (default: the profile’s)')
    .addOption(new Option('-p, --password <password>', 'password').env('SYNK_PASSWORD'))
    .action(async (options: { username?: string; password?: string }) => {
      const { client, profile } = await context();
      const username = options.username ?? profile?.username;
      if (!username)
        throw new UsageError(
          'login needs --username (or a profile with one: synk config init --username <name>)',
        );
      if (!options.password) throw new UsageError('login needs --password (or SYNK_PASSWORD)');
      const tokens = await client.auth.login(username, options.password);
      output(
        { username, expiresAt: tokens.expiresAt },
        `Logged in as ${username} (token valid until ${new Date(tokens.expiresAt * 1000).toISOString()})`,
      );
    });
  program
    .command('logout')
    .description('end this profile’s session on this server')
    .action(async () => {
      const { client } = await context();
      const { confirmed, status } = await client.auth.logout();
      if (confirmed) {
        output({ loggedOut: true, confirmed }, 'Logged out');
        return;
      }
      // The session is gone here either way; the server may still honour its refresh token.
      output({ loggedOut: true, confirmed, status }, 'Logged out here (the session is deleted locally)');
      warn(
        `the server did not confirm the logout (HTTP ${status}): the session's refresh token may still be valid there until it expires`,
      );
      process.exitCode = 1;
    });
  program
    .command('status')
    .description('server, version and who you are logged in as')
    .action(async () => {
      const { client, baseUrl } = await context();
      const health = ok(await client.api.GET('/health'));
      let tokens = await client.auth.tokens();
      // The token says who the session is for, not whether the server still takes it: one cheap
      // authenticated read (any role may) asks. An expired access token is refreshed on the way,
      // as for any command; a 401 after that means the session itself has expired or was revoked.
      let session: 'active' | 'expired' | null = null;
      if (tokens) {
        const check = await client.api.GET('/app-bundle/versions');
        if (check.response.status === 401) session = 'expired';
        else {
          ok(check);
          session = 'active';
          tokens = await client.auth.tokens();
        }
      }
      const user = tokens && sessionUser(tokens.token);
      const status = {
        server: baseUrl,
        health: health.status,
        version: health.version,
        user: user?.username ?? null,
        role: user?.role ?? null,
        session,
        ...(session === 'active' && user?.exp !== undefined
          ? { expiresAt: new Date(user.exp * 1000).toISOString() }
          : {}),
      };
      const who =
        session === 'active'
          ? `logged in as ${user ? `${user.username} (${user.role})` : 'an unknown user'}`
          : session === 'expired'
            ? `the session${user ? ` of ${user.username}` : ''} has expired or was revoked: log in again`
            : 'not logged in';
      output(status, `${baseUrl}: ${health.status} (server ${health.version}); ${who}`);
      // No session is as much "log in first" as an expired one: every command that needs one would
      // exit 3 (a script can run `synk status || synk login`); the report itself is still printed.
      if (session !== 'active') process.exitCode = 3;
    });
  program
    .command('health')
    .description('server health')
    .action(async () => {
      const { client, baseUrl } = await context();
      const notSynk = (status: number, type: string | null) =>
        new CliError(
          `${baseUrl} did not answer GET /health as a synk server does (HTTP ${status}${type ? `, ${type}` : ''})`,
        );
      const res = await client.api.GET('/health').catch((err: unknown) => {
        // openapi-fetch could not parse a 2xx answer as JSON (an HTML page, say).
        if (err instanceof SyntaxError) throw notSynk(200, null);
        throw err;
      });
      // A failing check answers 503 with the same health document, which openapi-fetch puts in `error`;
      // anything else (a proxy's or another server's page) is not a health document.
      const health = res.data ?? res.error;
      if (typeof (health as { status?: unknown } | undefined)?.status !== 'string')
        throw notSynk(res.response.status, res.response.headers.get('content-type'));
      output(health, () => JSON.stringify(health, null, 2));
      if (res.response.status !== 200) process.exitCode = 1;
    });
  program
    .command('version')
    .description('server version and system information')
    .action(async () => {
      const { client } = await context();
      const version = ok(await client.api.GET('/version'));
      output(
        version,
        `server ${version.server.version} on ${version.database.type} ${version.database.version}, ${version.build.runtime}`,
      );
    });
}
