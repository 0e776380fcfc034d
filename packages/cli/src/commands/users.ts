import type { components } from '@synk/sdk/node';
import { type Command, Option } from 'commander';
import { context, ok, output, table } from '../cli.ts';

type Role = components['schemas']['Role'];

export function registerUsers(program: Command): void {
  const users = program.command('users').description('user administration (admin)');
  users
    .command('list')
    .description('list the users with their roles')
    .action(async () => {
      const { client } = await context();
      const list = ok(await client.api.GET('/users'));
      output(list, () => table(list, ['username', 'role', 'createdAt']));
    });
  users
    .command('create <username>')
    .description('create a user')
    .requiredOption('--role <role>', 'read-only, read-write or admin')
    .addOption(
      new Option('--password <password>', 'initial password').env('SYNK_NEW_PASSWORD').makeOptionMandatory(),
    )
    .action(async (username: string, options: { role: Role; password: string }) => {
      const { client } = await context();
      const user = ok(
        await client.api.POST('/users/create', {
          body: { username, password: options.password, role: options.role },
        }),
      );
      output(user, `Created ${user.username} (${user.role})`);
    });
  users
    .command('delete <username>')
    .description('delete a user (never the last admin); their sessions end')
    .action(async (username: string) => {
      const { client } = await context();
      output(
        ok(await client.api.DELETE('/users/{username}', { params: { path: { username } } })),
        `Deleted ${username}`,
      );
    });
  users
    .command('reset-password <username>')
    .description('set a user’s password; their sessions end')
    .addOption(
      new Option('--password <password>', 'the new password').env('SYNK_NEW_PASSWORD').makeOptionMandatory(),
    )
    .action(async (username: string, options: { password: string }) => {
      const { client } = await context();
      output(
        ok(
          await client.api.POST('/users/reset-password', {
            body: { username, newPassword: options.password },
          }),
        ),
        `Password of ${username} reset`,
      );
    });
  users
    .command('change-password')
    .description('change your own password (any role)')
    // From the environment too, as login's and the other commands' passwords: a command line is
    // visible to every user of the machine (ps) and kept in the shell's history.
    .addOption(
      new Option('--current <password>', 'your current password').env('SYNK_PASSWORD').makeOptionMandatory(),
    )
    .addOption(
      new Option('--new <password>', 'the new password').env('SYNK_NEW_PASSWORD').makeOptionMandatory(),
    )
    .action(async (options: { current: string; new: string }) => {
      const { client } = await context();
      output(
        ok(
          await client.api.POST('/users/change-password', {
            body: { currentPassword: options.current, newPassword: options.new },
          }),
        ),
        'Password changed; log in again',
      );
    });
  users
    .command('set-role <username> <role>')
    .description('change a user’s role: read-only, read-write or admin; their sessions end')
    .action(async (username: string, role: Role) => {
      const { client } = await context();
      const user = ok(
        await client.api.PATCH('/users/{username}', { params: { path: { username } }, body: { role } }),
      );
      output(user, `${user.username} is now ${user.role}`);
    });
}
