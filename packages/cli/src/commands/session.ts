import { type Command, Option } from 'commander';
import { CliError, context, ok, output } from '../cli.ts';

export function registerSession(program: Command): void {
  program
    .command('login')
    .description('log in and keep the session for this profile')
    .option('-u, --username <name>', 'username (default: the profile’s)')
    .addOption(new Option('-p, --password <password>', 'password').env('SYNK_PASSWORD'))
    .action(async (options: { username?: string; password?: string }) => {
      const { client, profile } = await context();
      const username = options.username ?? profile?.username;
      if (!username || !options.password)
        throw new CliError('login needs --username and --password (or SYNK_PASSWORD)');
      const tokens = await client.auth.login(username, options.password);
      output(
        { username, expiresAt: tokens.expiresAt },
        `Logged in as ${username} (token valid until ${new Date(tokens.expiresAt * 1000).toISOString()})`,
      );
    });
  program
    .command('logout')
    .description('end this profile’s session')
    .action(async () => {
      const { client } = await context();
      await client.auth.logout();
      output({ loggedOut: true }, 'Logged out');
    });
  program
    .command('status')
    .description('server, version and who you are logged in as')
    .action(async () => {
      const { client, baseUrl } = await context();
      const health = ok(await client.api.GET('/health'));
      const tokens = await client.auth.tokens();
      const claims = tokens
        ? (JSON.parse(Buffer.from(tokens.token.split('.')[1]!, 'base64url').toString()) as {
            username: string;
            role: string;
          })
        : undefined;
      const status = {
        server: baseUrl,
        health: health.status,
        version: health.version,
        user: claims?.username ?? null,
        role: claims?.role ?? null,
      };
      output(
        status,
        `${baseUrl}: ${health.status} (server ${health.version}); ${claims ? `logged in as ${claims.username} (${claims.role})` : 'not logged in'}`,
      );
    });
  program
    .command('health')
    .description('server health')
    .action(async () => {
      const { client } = await context();
      const res = await client.api.GET('/health');
      const health = res.data ?? ((await res.response.json().catch(() => ({}))) as object);
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
