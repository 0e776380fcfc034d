import type { Command } from 'commander';
import { CliError, globals, output, serverBaseUrl, UsageError } from '../cli.ts';
import { type CliConfig, readConfig, writeConfig } from '../config.ts';

export function registerConfig(program: Command): void {
  const configCommand = program.command('config').description('manage profiles (server URL, username)');
  configCommand
    .command('init')
    .description('create or update a profile (--server, --profile) and make it current')
    .option('--username <name>', 'default username for login')
    .action(async (options: { username?: string }) => {
      const server = globals().server;
      if (!server) throw new UsageError('config init needs --server <url>');
      serverBaseUrl(server); // refuses what the commands could not connect to, before it is saved
      const config = await readConfig();
      const name = globals().profile ?? config.current ?? 'default';
      // An existing profile keeps what is not given again (its username).
      config.profiles[name] = {
        ...config.profiles[name],
        server,
        ...(options.username ? { username: options.username } : {}),
      };
      config.current = name;
      await writeConfig(config);
      output({ profile: name, ...config.profiles[name] }, `Profile "${name}" now points at ${server}`);
    });
  configCommand
    .command('view')
    .description('show the configuration')
    .action(async () => {
      const config = await readConfig();
      output(
        config,
        () =>
          Object.entries(config.profiles)
            .map(
              ([name, p]) =>
                `${name === config.current ? '*' : ' '} ${name}\t${p.server}${p.username ? `\t${p.username}` : ''}`,
            )
            .join('\n') || 'No profiles yet: synk config init --server <url>',
      );
    });
  configCommand
    .command('set <key> <value>')
    .description('set server or username of the current profile')
    .action(async (key: string, value: string) => {
      if (key !== 'server' && key !== 'username')
        throw new UsageError('Only "server" and "username" can be set');
      if (key === 'server') serverBaseUrl(value);
      const config: CliConfig = await readConfig();
      const name = globals().profile ?? config.current;
      config.profiles[name] = { ...(config.profiles[name] ?? { server: '' }), [key]: value };
      await writeConfig(config);
      output(config.profiles[name], `${name}.${key} = ${value}`);
    });
  configCommand
    .command('use <profile>')
    .description('make a profile current')
    .action(async (name: string) => {
      const config = await readConfig();
      if (!config.profiles[name]) throw new CliError(`No profile "${name}"`);
      config.current = name;
      await writeConfig(config);
      output({ current: name }, `Now using profile "${name}"`);
    });
}
