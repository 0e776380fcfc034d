import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { ApiError, multipartBody, type Problem, type SyncClient } from '@synk/sdk/node';
import { progressBar } from './cli.ts';

/**
 * Streams a download (an openapi-fetch result read as a stream) to a file, with a progress bar on
 * an interactive terminal. A refusal keeps the server's problem details: openapi-fetch has already
 * read them into `error`, so the body cannot be read again.
 */
export async function saveResponse(
  { response, error }: { response: Response; error?: unknown },
  file: string,
): Promise<number> {
  if (!response.ok || !response.body) {
    const problem = (error ?? (await response.json().catch(() => undefined))) as Problem | undefined;
    throw new ApiError(response.status, problem);
  }
  const total = Number(response.headers.get('content-length') ?? 0);
  const bar = progressBar(path.basename(file), total);
  let bytes = 0;
  const counting = Readable.fromWeb(response.body as NodeReadableStream).on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (!total) bar?.setTotal(bytes);
    bar?.update(bytes);
  });
  try {
    await pipeline(counting, createWriteStream(file));
  } finally {
    bar?.stop();
  }
  return bytes;
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
