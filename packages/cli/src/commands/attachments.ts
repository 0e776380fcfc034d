import path from 'node:path';
import { ApiError, type components } from '@synk/sdk/node';
import { type Command, InvalidArgumentError } from 'commander';
import { attachmentIdArgument, context, countArgument, ok, output, table, versionArgument } from '../cli.ts';
import { UsageError } from '../errors.ts';
import { destinationPath, fileSha256, STDOUT, saveResponse, uploadFile } from '../transfer.ts';

export function registerAttachments(program: Command): void {
  const attachments = program.command('attachments').description('attachments (photos, files)');
  attachments
    .command('upload <file>')
    .description('upload a file as an attachment (read-write)')
    .option('--id <id>', 'attachment id (default: the file name)', attachmentIdArgument)
    .action(async (file: string, options: { id?: string }) => {
      const id = options.id ?? idFromFileName(file);
      const { client, baseUrl } = await context();
      // The file is hashed in one pass and streamed in a second, so a file of any size uploads in
      // constant memory, and X-Content-SHA256 lets the server refuse bytes that arrive corrupted.
      const result = await uploadFile<components['schemas']['UploadAttachmentResponse']>(
        client,
        'PUT',
        `${baseUrl}/attachments/${encodeURIComponent(id)}`,
        { field: 'file', file, filename: id, contentType: 'application/octet-stream' },
        { 'x-content-sha256': await fileSha256(file) },
      );
      output(result, `Uploaded ${result.id} (${result.size} bytes, sha256 ${result.hash})`);
    });
  attachments
    .command('download')
    .argument('<id>', 'attachment id', attachmentIdArgument)
    .description('download an attachment')
    .option(
      '-o, --output <file>',
      'where to write it: a file, a directory (the id inside it) or - for standard output (default: the id)',
    )
    .action(async (id: string, options: { output?: string }) => {
      const { client } = await context();
      const res = await client.api.GET('/attachments/{attachment_id}', {
        params: { path: { attachment_id: id } },
        parseAs: 'stream',
      });
      const target = await destinationPath(options.output ?? id, id);
      const bytes = await saveResponse(res, target);
      if (target !== STDOUT) output({ file: target, bytes }, `Wrote ${target} (${bytes} bytes)`);
    });
  attachments
    .command('exists')
    .argument('<id>', 'attachment id', attachmentIdArgument)
    .description('whether an attachment exists: exit 0 if so, 1 if not')
    .action(async (id: string) => {
      const { client } = await context();
      const res = await client.api.HEAD('/attachments/{attachment_id}', {
        params: { path: { attachment_id: id } },
      });
      // Only a 404 says it does not exist: any other answer (401, 403, 5xx) is an error, not a no.
      const { status } = res.response;
      if (status !== 200 && status !== 404) throw new ApiError(status, undefined);
      const exists = status === 200;
      output({ id, exists }, exists ? `${id} exists` : `${id} does not exist`);
      if (!exists) process.exitCode = 1;
    });
  attachments
    .command('delete')
    .argument('<id>', 'attachment id', attachmentIdArgument)
    .description('delete an attachment (admin): devices drop their copy on their next sync')
    .action(async (id: string) => {
      const { client } = await context();
      const deleted = ok(
        await client.api.DELETE('/attachments/{attachment_id}', { params: { path: { attachment_id: id } } }),
      );
      output(deleted, `Deleted ${deleted.id} (version ${deleted.version})`);
    });
  attachments
    .command('manifest')
    .description('the attachment operations (download, delete) after a version')
    .option('--since <version>', 'changes after this version', versionArgument, 0)
    .option(
      '--limit <n>',
      'at most this many operations (up to 5000); says where the rest start',
      manifestLimitArgument,
    )
    .action(async (options: { since: number; limit?: number }) => {
      const { client } = await context();
      const manifest = ok(
        await client.api.POST('/attachments/manifest', {
          ...(options.limit === undefined ? {} : { params: { query: { limit: options.limit } } }),
          body: { client_id: await client.clientId(), since_version: options.since },
        }),
      );
      output(manifest, () => {
        const listed = table(manifest.operations, ['operation', 'attachment_id', 'size', 'version']);
        // An older server pages nothing and says nothing of it.
        return manifest.has_more
          ? `${listed}\nMore operations follow: --since ${manifest.change_cutoff}`
          : listed;
      });
    });
}

/** The id an upload gets by default: its file's name, when that is a valid attachment id. */
function idFromFileName(file: string): string {
  const name = path.basename(file);
  try {
    return attachmentIdArgument(name);
  } catch {
    throw new UsageError(
      `the file name ${JSON.stringify(name)} is not a valid attachment id (1–255 of A-Z a-z 0-9 . _ -): choose one with --id`,
    );
  }
}

/** A `--limit` of the attachment manifest: 1 to 5000 operations, as the server pages them. */
function manifestLimitArgument(value: string): number {
  const limit = countArgument(value);
  if (limit > 5000)
    throw new InvalidArgumentError('must be at most 5000 (the most the server answers at once)');
  return limit;
}
