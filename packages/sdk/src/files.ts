import { ApiError, type Problem } from './errors.ts';
import type { Emitter } from './events.ts';
import type { components } from './generated/schema.ts';
import { checkAttachmentId, checkBundlePath } from './local-names.ts';
import type { SyncStorage } from './storage.ts';
import { type RequestSource, streamsRequestBodies } from './transport.ts';

type Schemas = components['schemas'];
type Api = ReturnType<typeof import('openapi-fetch').default<import('./generated/schema.ts').paths>>;

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The body of a download did not have the manifest's hash. */
class CorruptDownload extends Error {}

/**
 * The body of a download, once its sha256 is the one the manifest gave: a body cut short or altered
 * on the way (a proxy, a flaky network), or a file replaced on the server since the manifest was
 * read, must not be written as if it were the file of that hash.
 */
async function verifiedBytes(res: Response, hash: string, what: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  if ((await sha256Hex(bytes)) !== hash) throw new CorruptDownload(`${what} arrived corrupted`);
  return bytes;
}

const UPLOAD_CHUNK = 64 * 1024;

/**
 * A multipart/form-data body with one part, streamed from bytes or from any async source of chunks
 * (a file read stream in Node), reporting the bytes handed over so far. Send it with `duplex: 'half'`.
 */
export function multipartBody(
  source: Uint8Array | AsyncIterable<Uint8Array>,
  part: { field: string; filename: string; contentType: string; size?: number },
  onProgress: (loaded: number) => void = () => {},
): { body: ReadableStream<Uint8Array>; contentType: string; contentLength?: number } {
  const boundary = `synk-${globalThis.crypto.randomUUID()}`;
  const encoder = new TextEncoder();
  const head = encoder.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="${part.field}"; ` +
      `filename="${encodeURIComponent(part.filename)}"\r\nContent-Type: ${part.contentType}\r\n\r\n`,
  );
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (source instanceof Uint8Array) {
      for (let offset = 0; offset < source.byteLength; offset += UPLOAD_CHUNK)
        yield source.subarray(offset, offset + UPLOAD_CHUNK);
    } else yield* source;
  }
  const iterator = chunks();
  let loaded = 0;
  let started = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(head);
        return;
      }
      const next = await iterator.next();
      if (next.done) {
        controller.enqueue(tail);
        controller.close();
        return;
      }
      loaded += next.value.byteLength;
      controller.enqueue(next.value);
      onProgress(loaded);
    },
    async cancel() {
      await iterator.return(undefined);
    },
  });
  const size = source instanceof Uint8Array ? source.byteLength : part.size;
  return {
    body,
    contentType: `multipart/form-data; boundary=${boundary}`,
    ...(size === undefined ? {} : { contentLength: head.byteLength + size + tail.byteLength }),
  };
}

/**
 * The device's copy of the files: attachments by id, app bundle files by relative path. The names
 * come from the server's manifests and are checked first (see local-names.ts): none escapes the
 * directory an app keeps them in.
 */
export interface LocalFiles {
  /** sha256 (hex) of the local copy, or undefined when there is none. */
  hashOf(id: string): Promise<string | undefined>;
  write(id: string, bytes: Uint8Array, meta: { contentType?: string; hash?: string }): Promise<void>;
  /**
   * Optional: takes a download as it arrives, so that a file of any size (an attachment may be
   * 100 MiB) costs a chunk of memory rather than the whole file; resolves with the sha256 (hex) of
   * the bytes it read. When `meta.hash` is given and they do not have it, nothing of them may be kept
   * and the local copy stays as it was (the SDK reports the download as corrupted); a stream that
   * fails (a network lost, a cancellation) must leave the local copy too, and reject. On any
   * failure of its own it cancels the stream, which releases the connection. `DirectoryFiles`
   * (`@synk/sdk/node`) implements it.
   *
   * Without it, each download is read whole and handed to `write`, which is what a store of whole
   * values (IndexedDB, a Map in memory) would do with a stream anyway: it holds an IndexedDB value
   * or a Blob only once it has all of it. A browser app keeping large files can implement it on the
   * Origin Private File System (`createWritable()` takes a stream). React Native's fetch gives no
   * response stream, so there every download goes to `write`.
   */
  writeStream?(
    id: string,
    body: ReadableStream<Uint8Array>,
    meta: { contentType?: string; hash?: string },
  ): Promise<string>;
  remove(id: string): Promise<void>;
  /**
   * Optional: called when a sync (`attachments.syncTo`, `bundles.syncTo`) is over, also one that
   * failed, to make durable what the storage keeps for the next one: `DirectoryFiles` writes the
   * hashes it remembers (so the next sync does not read every file again).
   */
  flush?(): Promise<void>;
}

/**
 * Runs a sync over `local`, then has it flush: after a failure too, so that the files hashed before
 * it are not read again, without the flush's own error hiding the sync's.
 */
async function flushingAfter<T>(local: LocalFiles, sync: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await sync();
  } catch (error) {
    await local.flush?.().catch(() => {});
    throw error;
  }
  await local.flush?.();
  return result;
}

/**
 * Puts the body of a download into local files, written only if its sha256 is `meta.hash` (when
 * given): streamed where the storage takes a stream and the platform gives one, else read whole.
 */
async function saveDownload(
  local: LocalFiles,
  name: string,
  res: Response,
  meta: { contentType?: string; hash?: string },
  what: string,
): Promise<void> {
  if (local.writeStream && res.body) {
    const body = res.body;
    const received = await local.writeStream(name, body, meta).catch(async (error: unknown) => {
      // An implementation that failed before reading it all may have left the connection open.
      await body.cancel().catch(() => {});
      throw error;
    });
    if (meta.hash && received !== meta.hash) throw new CorruptDownload(`${what} arrived corrupted`);
    return;
  }
  const bytes = meta.hash
    ? await verifiedBytes(res, meta.hash, what)
    : new Uint8Array(await res.arrayBuffer());
  await local.write(name, bytes, meta);
}

/** An attachment `attachments.syncTo` could not download, and why (an `ApiError`, or a body that did not have its hash). */
export interface FailedDownload {
  id: string;
  error: unknown;
}

/** Answers that say nothing of the next download: the session, the rate or the server's state. */
const NOT_ONE_FILE = new Set([401, 403, 408, 429, 502, 503, 504]);

/**
 * Was this download's failure about its own file (gone, damaged on the server, altered on the
 * way), rather than one every download would meet (a network down, a cancellation, the session)?
 */
function ofThisFileOnly(error: unknown): boolean {
  if (error instanceof ApiError) return !NOT_ONE_FILE.has(error.status);
  return error instanceof CorruptDownload;
}

/** The error for a refused request, with the server's problem details; reading them releases the connection. */
async function refusal(res: Response): Promise<ApiError> {
  return ApiError.of(res, (await res.json().catch(() => undefined)) as Problem | undefined);
}

/** Operations per attachment manifest page (the server allows up to 5000). */
const MANIFEST_PAGE_SIZE = 500;

/** Attachment helpers: hash-checked uploads and manifest-driven downloads of what is missing. */
export function attachmentHelpers(
  api: Api,
  baseUrl: string,
  authedFetch: (request: RequestSource) => Promise<Response>,
  clientId: () => Promise<string>,
  events: Emitter,
) {
  return {
    /**
     * Uploads with `X-Content-SHA256`, so the server refuses corrupted bytes; the same bytes again
     * are a no-op. Emits `upload:progress`.
     */
    async upload(
      id: string,
      bytes: Uint8Array,
      contentType = 'application/octet-stream',
      options: { signal?: AbortSignal } = {},
    ): Promise<Schemas['UploadAttachmentResponse']> {
      const total = bytes.byteLength;
      const progress = (loaded: number) => events.emit('upload:progress', { id, loaded, total });
      const url = `${baseUrl}/attachments/${encodeURIComponent(id)}`;
      const hash = await sha256Hex(bytes);
      const signal: RequestInit = options.signal ? { signal: options.signal } : {};
      // Built again for each attempt, so a retry does not keep a second copy of the bytes (see
      // RequestSource); the progress of a retry starts again from 0. Streamed where the platform
      // can (see streamsRequestBodies), reporting progress as the bytes go out; elsewhere a plain
      // FormData, with progress at the start and the end.
      const request = (): Request => {
        if (!streamsRequestBodies) {
          const form = new FormData();
          form.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>], { type: contentType }), id);
          return new Request(url, {
            method: 'PUT',
            body: form,
            headers: { 'x-content-sha256': hash },
            ...signal,
          });
        }
        const multipart = multipartBody(bytes, { field: 'file', filename: id, contentType }, progress);
        return new Request(url, {
          method: 'PUT',
          body: multipart.body,
          headers: {
            'x-content-sha256': hash,
            'content-type': multipart.contentType,
            // Its length, so it is not sent chunked (a stream, it is watched as an upload either way).
            ...(multipart.contentLength === undefined
              ? {}
              : { 'content-length': String(multipart.contentLength) }),
          },
          duplex: 'half',
          ...signal,
        } as RequestInit);
      };
      progress(0);
      const response = await authedFetch(request);
      if (!streamsRequestBodies) progress(total);
      // A refusal need not be JSON: a proxy's 413 or 502 is an HTML page.
      if (!response.ok) throw await refusal(response);
      return (await response.json()) as Schemas['UploadAttachmentResponse'];
    },

    /**
     * Applies the manifest since `sinceVersion` to local files: downloads attachments whose local
     * copy is missing or differs (hash), removes deleted ones. Returns the version to ask from next
     * time. An attachment the server answers for but cannot give (gone since the manifest, a damaged
     * copy on its disk, bytes that do not have its hash) is listed in `failed` and the others go on
     * (one such file would otherwise stop every sync at the same place, and no later attachment
     * would ever arrive); the version returned is then the one before it, so that the next sync asks
     * for it again (the ones after it that arrived are skipped by their hash). A failure that would
     * befall every download (no network, the session, an overloaded server) is thrown.
     *
     * The manifest is read in pages of `pageSize` operations (`?limit`), each applied before the
     * next is asked for, so a device meeting 100,000 photos holds one page at a time. A server
     * without paging (1.0.3) answers everything at once, without `has_more`: that is one page.
     */
    async syncTo(
      local: LocalFiles,
      sinceVersion = 0,
      options: { signal?: AbortSignal; pageSize?: number } = {},
    ): Promise<{ downloaded: string[]; removed: string[]; failed: FailedDownload[]; version: number }> {
      return flushingAfter(local, () => applyManifest(local, sinceVersion, options));
    },
  };

  /** What `attachments.syncTo` does, before it has `local` flush. */
  async function applyManifest(
    local: LocalFiles,
    sinceVersion: number,
    options: { signal?: AbortSignal; pageSize?: number },
  ): Promise<{ downloaded: string[]; removed: string[]; failed: FailedDownload[]; version: number }> {
    const downloaded: string[] = [];
    const removed: string[] = [];
    const failed: FailedDownload[] = [];
    let firstFailed: number | undefined;
    let cursor = sinceVersion;
    for (;;) {
      const { data, error, response } = await api.POST('/attachments/manifest', {
        params: { query: { limit: options.pageSize ?? MANIFEST_PAGE_SIZE } },
        body: { client_id: await clientId(), since_version: cursor },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (!data) throw ApiError.of(response, error as Problem | undefined);
      for (const op of data.operations) checkAttachmentId(op.attachment_id);
      firstFailed ??= await applyPage(data.operations);
      if (!data.has_more) {
        const version = firstFailed === undefined ? data.current_version : firstFailed - 1;
        return { downloaded, removed, failed, version };
      }
      cursor = data.change_cutoff;
    }

    /** Applies one page's operations; returns the version of the first that failed, if one did. */
    async function applyPage(operations: Schemas['AttachmentManifestOperation'][]) {
      let failedAt: number | undefined;
      for (const op of operations) {
        if (op.operation === 'delete') {
          await local.remove(op.attachment_id);
          removed.push(op.attachment_id);
          continue;
        }
        if (op.hash && (await local.hashOf(op.attachment_id)) === op.hash) continue;
        try {
          const res = await authedFetch(
            new Request(`${baseUrl}/attachments/${encodeURIComponent(op.attachment_id)}`, {
              ...(options.signal ? { signal: options.signal } : {}),
            }),
          );
          if (!res.ok) throw await refusal(res);
          // A failure to write (a full disk) is not of this file only: it is thrown.
          await saveDownload(
            local,
            op.attachment_id,
            res,
            {
              ...(op.content_type ? { contentType: op.content_type } : {}),
              ...(op.hash ? { hash: op.hash } : {}),
            },
            `attachment ${op.attachment_id}`,
          );
        } catch (error) {
          if (!ofThisFileOnly(error)) throw error;
          failed.push({ id: op.attachment_id, error });
          failedAt ??= op.version;
          continue;
        }
        downloaded.push(op.attachment_id);
      }
      return failedAt;
    }
  }
}

/**
 * The most of a bundle's changed files `bundles.syncTo` holds in memory to write them together
 * (app bundles are forms and a web app, typically a few MB).
 */
const STAGED_BUNDLE_BYTES = 64 * 1024 * 1024;

/** Where the paths of the bundle last synced to the device are kept (in the client's sync state). */
const SYNCED_BUNDLE_FILES = 'bundle:files';

/**
 * App bundle helpers: the manifest with ETag caching, downloading only changed files, and removing
 * the files a new bundle no longer has.
 */
export function bundleHelpers(
  baseUrl: string,
  authedFetch: (request: Request) => Promise<Response>,
  state: SyncStorage,
) {
  let cached: { etag: string; manifest: Schemas['AppBundleManifest'] } | undefined;
  /** The active manifest; a 304 answer reuses the cached one (no body transferred). */
  async function manifest(
    options: { signal?: AbortSignal } = {},
  ): Promise<{ manifest: Schemas['AppBundleManifest']; changed: boolean }> {
    const headers: Record<string, string> = cached ? { 'if-none-match': cached.etag } : {};
    const res = await authedFetch(
      new Request(`${baseUrl}/app-bundle/manifest`, {
        headers,
        ...(options.signal ? { signal: options.signal } : {}),
      }),
    );
    if (res.status === 304 && cached) return { manifest: cached.manifest, changed: false };
    if (!res.ok) throw await refusal(res);
    const fresh = (await res.json()) as Schemas['AppBundleManifest'];
    cached = { etag: res.headers.get('etag') ?? `"${fresh.hash}"`, manifest: fresh };
    return { manifest: fresh, changed: true };
  }
  // Plain functions, not methods reading `this`: an app passes them around on their own.
  return {
    manifest,

    /**
     * Downloads the files whose hash differs from the local copy, each checked against the
     * manifest's hash, and writes them once all have arrived (up to `STAGED_BUNDLE_BYTES` of them;
     * a larger change is written as it arrives); then removes the files of the bundle synced before
     * that this one no longer has. Returns the paths downloaded. `signal` cancels it, also
     * mid-download; the next sync downloads only what was not written.
     */
    syncTo(local: LocalFiles, options: { signal?: AbortSignal } = {}): Promise<string[]> {
      return flushingAfter(local, () => applyBundle(local, options));
    },
  };

  /** What `bundles.syncTo` does, before it has `local` flush. */
  async function applyBundle(local: LocalFiles, options: { signal?: AbortSignal }): Promise<string[]> {
    const { manifest: active } = await manifest(options);
    for (const file of active.files) checkBundlePath(file.path);
    const changed: (typeof active.files)[number][] = [];
    for (const file of active.files) if ((await local.hashOf(file.path)) !== file.hash) changed.push(file);
    // Held until every changed file is here: a network lost midway left a new form's schema.json
    // beside the old ui.json, a mix the app then ran (offline, maybe for days).
    const hold = changed.reduce((sum, file) => sum + file.size, 0) <= STAGED_BUNDLE_BYTES;
    const arrived: { file: (typeof changed)[number]; bytes: Uint8Array }[] = [];
    for (const file of changed) {
      const res = await authedFetch(
        new Request(
          `${baseUrl}/app-bundle/download/${file.path.split('/').map(encodeURIComponent).join('/')}`,
          options.signal ? { signal: options.signal } : {},
        ),
      );
      if (!res.ok) throw await refusal(res);
      const what = `app bundle file ${file.path}`;
      const meta = { contentType: file.mimeType, hash: file.hash };
      // Not held, a file goes straight to the device, streamed where it can be (it may be large).
      if (hold) arrived.push({ file, bytes: await verifiedBytes(res, file.hash, what) });
      else await saveDownload(local, file.path, res, meta, what);
    }
    for (const { file, bytes } of arrived)
      await local.write(file.path, bytes, { contentType: file.mimeType, hash: file.hash });
    const fetched = changed.map((file) => file.path);
    // A file the bundle no longer has (a form removed) would go on being offered by the app. Only
    // files this sync wrote go, never others the app keeps in the same place; a crash before the
    // list is stored has them removed again, which finds them gone.
    const current = new Set(active.files.map((file) => file.path));
    for (const path of (await state.get<string[]>(SYNCED_BUNDLE_FILES)) ?? [])
      if (!current.has(path)) await local.remove(path);
    await state.set(SYNCED_BUNDLE_FILES, [...current]);
    return fetched;
  }
}
