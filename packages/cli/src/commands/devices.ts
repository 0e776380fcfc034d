import type { SyncClientStatus } from '@synk/sdk/node';
import type { Command } from 'commander';
import { context, output, table } from '../cli.ts';

/** Devices per request: the most the server gives, so a fleet of hundreds is a request or two. */
const PAGE_SIZE = 500;

/** A time to the second, in UTC (as the server keeps it), or `never`. */
function when(iso: string | null): string {
  return iso === null ? 'never' : iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function deviceRow(d: SyncClientStatus) {
  return {
    'client id': d.client_id,
    user: d.username,
    'last push': when(d.last_push_at),
    'last pull': when(d.last_pull_at),
    'behind by': d.behind_by,
  };
}

export function registerDevices(program: Command): void {
  program
    .command('devices')
    .description(
      'list every device (client id) with its last user, last push and pull, and how many changes it has not pulled (admin)',
    )
    .action(async () => {
      const { client } = await context();
      const devices: SyncClientStatus[] = [];
      for await (const page of client.syncClientPages({ limit: PAGE_SIZE })) devices.push(...page.clients);
      output(devices, () =>
        devices.length === 0
          ? 'No device has pushed or pulled yet'
          : table(devices.map(deviceRow), ['client id', 'user', 'last push', 'last pull', 'behind by']),
      );
    });
}
