import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, unlinkSync } from 'node:fs';
import { type FileHandle, open, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { ApiError, multipartBody, type Problem, type SyncClient } from '@synk/sdk/node';
import { CliError, progressBar } from './cli.ts';

/** Where `-o -` (or an export's `-`) writes: standard output instead of a file. */
export const STDOUT = '-';
/** The file `-` read from: standard input. */
export const STDIN = '-';

/** The body's length as sent, when the server gave it and fetch hands the bytes over as they came. */
function expectedLength(response: Response): number | undefined {
  const encoding = response.headers.get('content-encoding');
  if (encoding && encoding !== 'identity') return undefined; // fetch decodes: the length is the encoded one
  const length = response.headers.get('content-length');
  return length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
}

/**
 * Streams a download (an openapi-fetch result read as a stream) to a file, or to standard output
 * for `-`, with a progress bar on an interactive terminal, written whole or not at all (see
 * `writeWhole`), and checked against the Content-Length. A refusal keeps the server's problem
 * details: openapi-fetch has already read them into `error`, so the body cannot be read again.
 * `operation` names what failed in the error ("download", "export").
 */
export async function saveResponse(
  { response, error }: { response: Response; error?: unknown },
  file: string,
  operation = 'download',
): Promise<number> {
  if (!response.ok || !response.body) {
    const problem = (error ?? (await response.json().catch(() => undefined))) as Problem | undefined;
    throw new ApiError(response.status, problem);
  }
  const name = destinationName(file);
  const expected = expectedLength(response);
  const bar = progressBar(name, expected ?? 0);
  let bytes = 0;
  const body = Readable.fromWeb(response.body as NodeReadableStream);
  const interrupted = (err: unknown) =>
    new CliError(`${operation} of ${name} interrupted: ${(err as Error)?.message ?? String(err)}`);
  try {
    await writeWhole(
      file,
      operation,
      async (write) => {
        const chunks = body[Symbol.asyncIterator]();
        for (;;) {
          let next: IteratorResult<Buffer>;
          try {
            next = await chunks.next();
          } catch (err) {
            throw interrupted(err);
          }
          if (next.done) break;
          await write(next.value);
          bytes += next.value.length;
          if (expected === undefined) bar?.setTotal(bytes);
          bar?.update(bytes);
        }
        if (expected !== undefined && bytes !== expected)
          throw interrupted(new Error(`got ${bytes} of ${expected} bytes`));
      },
      () => bar?.stop(),
    );
  } catch (err) {
    body.destroy();
    throw err;
  } finally {
    bar?.stop();
  }
  return bytes;
}

/**
 * Where a download whose own name is `name` goes when asked to go to `target`: into `target` under
 * `name` when `target` is a directory (one that exists, or any path ending in a separator), as `cp`
 * does; else `target` itself. A download renamed over a directory would fail only once complete.
 */
export async function destinationPath(target: string, name: string): Promise<string> {
  if (target === STDOUT) return target;
  const isDirectory =
    target.endsWith('/') ||
    target.endsWith(path.sep) ||
    (await stat(target).then(
      (info) => info.isDirectory(),
      () => false,
    ));
  return isDirectory ? path.join(target, name) : target;
}

const destinationName = (file: string) => (file === STDOUT ? 'standard output' : path.basename(file));

/** Writes to standard output, waiting while it is full: what is printed is not held in memory meanwhile. */
export async function writeStdout(chunk: Buffer | string): Promise<void> {
  if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
}

/**
 * Writes a file whole or not at all, from what `fill` hands to `write`; or standard output for `-`.
 * The bytes go to `.<name>.<random>.part` beside the file, are flushed to disk and renamed over
 * it, so an existing file is only ever replaced by a complete one (keeping its permissions). The
 * temporary file is removed when anything fails, and on SIGINT or SIGTERM (after which the process
 * exits 130 or 143, `beforeExit` run first). A failed write is a CliError naming `operation`;
 * `fill`'s own errors pass.
 */
export async function writeWhole(
  file: string,
  operation: string,
  fill: (write: (chunk: Buffer) => Promise<void>) => Promise<void>,
  beforeExit: () => void = () => {},
): Promise<void> {
  const name = destinationName(file);
  const failed = (err: unknown) =>
    new CliError(`${operation} of ${name} failed: ${(err as Error)?.message ?? String(err)}`);
  if (file === STDOUT) {
    await fill(writeStdout);
    return;
  }

  const temp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(6).toString('hex')}.part`,
  );
  const removeTemp = () => {
    try {
      unlinkSync(temp);
    } catch {
      // never created, or gone already
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    beforeExit();
    removeTemp();
    process.stderr.write(`${operation} of ${name} interrupted (${signal}); ${file} left as it was\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let handle: FileHandle | undefined;
  try {
    try {
      handle = await open(temp, 'wx');
      // A file replaced keeps its permissions.
      const mode = await stat(file).then(
        (info) => info.mode & 0o7777,
        () => undefined,
      );
      if (mode !== undefined) await handle.chmod(mode);
    } catch (err) {
      // Named as the user wrote it, not as the temporary file's ENOENT (`… .records.json.<hex>.part`).
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR')
        throw failed(new Error(`there is no directory ${path.dirname(file)}`));
      throw failed(err);
    }
    const out = handle;
    await fill(async (chunk) => {
      try {
        await out.write(chunk);
      } catch (err) {
        throw failed(err);
      }
    });
    try {
      await out.sync();
      await out.close();
      handle = undefined;
      await rename(temp, file);
    } catch (err) {
      throw failed(err);
    }
  } catch (err) {
    await handle?.close().catch(() => undefined);
    removeTemp();
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The sha256 (hex) of a file, read as a stream. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * The bytes of `file`, opened when first read: an attempt whose body is never read (a refused
 * connection) opens nothing, and one whose body is released closes the file it opened.
 */
async function* fileChunks(file: string): AsyncGenerator<Uint8Array> {
  yield* createReadStream(file);
}

/**
 * Sends a file streamed as the one part of a multipart body (the SDK's `multipartBody`), so its
 * size never matters to memory, with a progress bar on an interactive terminal (bytes are counted
 * as the network takes them).
 */
export async function uploadFile<Response200>(
  client: SyncClient,
  method: 'PUT' | 'POST',
  url: string,
  part: { field: string; file: string; filename: string; contentType: string },
  headers: Record<string, string> = {},
): Promise<Response200> {
  const size = (await stat(part.file)).size;
  const bar = progressBar(part.filename, size);
  // The request is built anew for each attempt (a retry re-reads the file): a streamed body handed
  // over as a Request would be held whole in memory so it could be sent again. The transport ends
  // each attempt's body when the attempt is over, which closes its file.
  const attempt = () => {
    const multipart = multipartBody(
      fileChunks(part.file),
      { field: part.field, filename: part.filename, contentType: part.contentType, size },
      (sent) => bar?.update(sent),
    );
    return new Request(url, {
      method,
      body: multipart.body,
      headers: {
        ...headers,
        'content-type': multipart.contentType,
        'content-length': String(multipart.contentLength),
      },
      duplex: 'half',
    } as RequestInit);
  };
  try {
    const response = await client.fetch(attempt);
    if (!response.ok) {
      // Not always the API's problem document: a proxy in front of it may refuse an upload too.
      const problem = (await response.json().catch(() => undefined)) as Problem | undefined;
      throw new ApiError(response.status, problem);
    }
    return (await response.json()) as Response200;
  } finally {
    bar?.stop();
  }
}
