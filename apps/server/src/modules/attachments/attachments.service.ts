import type { Readable } from 'node:stream';
import type { components } from '@synk/contract';
import mime from 'mime-types';
import { Conflict, HttpProblem, Invalid, NotFound, PayloadTooLarge } from '../../http/errors.ts';
import {
  BlobDigestMismatch,
  type BlobReader,
  type BlobStorage,
  BlobTooLarge,
  type StagedBlob,
} from '../../lib/blob-storage.ts';
import type { ChangeSignal } from '../sync/change-events.ts';
import type { AttachmentIndex, AttachmentRow } from '../sync/sync.store.ts';
import type { BlobLocks, LockedBlob } from './attachments.repository.ts';
import { type ManifestQuery, manifestJson } from './manifest.ts';
import { type DeclaredMediaType, formatMediaType, parseDeclaredMediaType } from './media-type.ts';

type Schemas = components['schemas'];

/** One path segment of safe characters, never `.` or `..` (spec §5). */
export const ATTACHMENT_ID = /^(?!\.\.?$)[A-Za-z0-9._-]{1,255}$/;

export function checkAttachmentId(id: string): void {
  if (!ATTACHMENT_ID.test(id)) {
    throw Invalid('Invalid attachment id', [
      {
        path: '/path/attachment_id',
        message: 'must be 1-255 characters of A-Z a-z 0-9 . _ -, and not . or ..',
      },
    ]);
  }
}

/**
 * The expected sha256 from `X-Content-SHA256: <hex>` and from `Content-Digest` (RFC 9530);
 * `undefined` when neither names a sha256, a 400 when one is malformed. When both name one they
 * must agree: the content cannot match two different digests, and each is to be verified.
 */
export function expectedDigest(headers: {
  contentDigest?: string;
  contentSha256?: string;
}): string | undefined {
  let hex: string | undefined;
  if (headers.contentSha256 !== undefined) {
    hex = headers.contentSha256.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw Invalid('X-Content-SHA256 must be 64 hex digits');
  }
  const fromContentDigest =
    headers.contentDigest === undefined ? undefined : sha256OfContentDigest(headers.contentDigest);
  if (hex !== undefined && fromContentDigest !== undefined && hex !== fromContentDigest) {
    throw new HttpProblem(
      400,
      'digest_mismatch',
      `X-Content-SHA256 declares ${hex} and Content-Digest ${fromContentDigest}: the content can match only one`,
    );
  }
  return hex ?? fromContentDigest;
}

/** One dictionary member of `Content-Digest`: `algorithm=:<base64>:`, perhaps with parameters. */
const DIGEST_MEMBER = /^\s*([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):\s*(?:;[^,]*)?$/i;

/**
 * `Content-Digest` is a structured-field dictionary of `algorithm=:<base64>:` members. Its sha-256
 * as hex; `undefined` when it only names algorithms this server does not compute, which RFC 9530
 * (§2, §5) lets a recipient ignore. Anything that is not such a dictionary, or a sha-256 that is not
 * 32 bytes, is a 400. The `=` padding may be left out (RFC 8941 §4.2.7 asks parsers to accept that).
 */
function sha256OfContentDigest(header: string): string | undefined {
  let sha256: string | undefined;
  for (const member of header.split(',')) {
    const match = DIGEST_MEMBER.exec(member);
    if (!match || match[2]!.replace(/=+$/, '').length % 4 === 1)
      throw Invalid('Content-Digest must be a list of algorithm=:<base64>: digests, e.g. sha-256=:<base64>:');
    if (match[1]!.toLowerCase() !== 'sha-256') continue;
    const digest = Buffer.from(match[2]!, 'base64');
    if (digest.length !== 32)
      throw Invalid('The sha-256 of Content-Digest must be 32 bytes (44 base64 characters)');
    sha256 = digest.toString('hex');
  }
  return sha256;
}

export interface AttachmentsServiceDeps {
  index: AttachmentIndex;
  blobs: BlobStorage;
  locks: BlobLocks;
  maxBytes: number;
  clock: () => Date;
  /** Told of each version an upload or a delete consumes (event streams). */
  changes?: ChangeSignal;
}

export class AttachmentsService {
  readonly #deps: AttachmentsServiceDeps;

  constructor(deps: AttachmentsServiceDeps) {
    this.#deps = deps;
  }

  /**
   * Streams the bytes into staging (hash verified, size limited); nothing is kept on failure. The
   * caller passes the result to `store`, or discards it.
   */
  async receive(file: Readable, expectedSha256: string | undefined): Promise<StagedBlob> {
    try {
      return await this.#deps.blobs.stage(file, {
        maxBytes: this.#deps.maxBytes,
        ...(expectedSha256 ? { expectedSha256 } : {}),
      });
    } catch (err) {
      if (err instanceof BlobTooLarge) throw PayloadTooLarge(`Attachments are limited to ${err.limit} bytes`);
      if (err instanceof BlobDigestMismatch) {
        throw new HttpProblem(
          400,
          'digest_mismatch',
          `The content's sha256 is ${err.actual}, not ${err.expected} as declared`,
        );
      }
      throw err;
    }
  }

  /**
   * Records a received blob under `id`: new → a version; same bytes → idempotent; other bytes → 409.
   * The blob is published and its row committed under the blob's lock, so a concurrent delete of
   * the last other attachment with these bytes either removes the file before (and this publishes
   * it again) or sees this row and keeps it. A refused or failed store leaves no blob that no live
   * attachment uses, and never the staged file.
   */
  async store(
    id: string,
    blob: StagedBlob,
    filename: string,
    declaredType: string,
  ): Promise<Schemas['UploadAttachmentResponse']> {
    const contentType = contentTypeFor(id, filename, declaredType);
    try {
      const outcome = await this.#deps.locks.withBlob(blob.hash, async (locked) => {
        await blob.publish();
        try {
          const result = await this.#deps.index.putAttachment({
            id,
            hash: blob.hash,
            size: blob.size,
            contentType,
            now: this.#now(),
          });
          if (result.kind === 'conflict') await this.#removeIfUnused(blob.hash, locked);
          return result;
        } catch (err) {
          await this.#removeIfUnused(blob.hash, locked);
          throw err;
        }
      });
      if (outcome.kind === 'conflict') {
        throw Conflict(`Attachment ${id} already exists with different content`, 'attachment_exists', {
          hash: outcome.hash,
        });
      }
      if (outcome.kind === 'created') this.#deps.changes?.advanced(outcome.version);
      return { status: 'success', id, hash: blob.hash, size: blob.size, version: outcome.version };
    } finally {
      await blob.discard();
    }
  }

  async find(id: string): Promise<AttachmentRow> {
    checkAttachmentId(id);
    const row = await this.#deps.index.getAttachment(id);
    if (!row) throw NotFound(`No attachment ${id}`);
    return row;
  }

  /**
   * The live attachment and its content, open: 404 when there is none; 500 when its file is
   * missing or not the size recorded (the storage was damaged), before anything is sent.
   */
  async open(id: string): Promise<{ row: AttachmentRow; content: BlobReader }> {
    return this.#withContent(
      id,
      (hash) => this.#deps.blobs.open(hash),
      (reader) => reader.close(),
    );
  }

  /** The live attachment, once its content is known to be there (as `open`, without opening it). */
  async head(id: string): Promise<AttachmentRow> {
    return (await this.#withContent(id, (hash) => this.#deps.blobs.stat(hash))).row;
  }

  async #withContent<T extends { size: number }>(
    id: string,
    probe: (hash: string) => Promise<T | undefined>,
    release?: (content: T) => Promise<void>,
  ): Promise<{ row: AttachmentRow; content: T }> {
    let row = await this.find(id);
    let content = await probe(row.hash);
    if (content === undefined) {
      // Deleted (or replaced) between reading the row and reaching its file: look again.
      row = await this.find(id);
      content = await probe(row.hash);
    }
    if (content === undefined) {
      throw new HttpProblem(500, 'blob_missing', `The content of attachment ${id} is missing from storage`);
    }
    if (content.size !== row.size) {
      await release?.(content);
      throw new HttpProblem(
        500,
        'blob_damaged',
        `The stored content of attachment ${id} is ${content.size} bytes, not ${row.size}`,
      );
    }
    return { row, content };
  }

  /** Records a delete; the blob goes too when no live attachment uses it any more. */
  async delete(id: string): Promise<Schemas['DeleteAttachmentResponse']> {
    checkAttachmentId(id);
    const deleted = await this.#deps.index.deleteAttachment(id, this.#now());
    if (!deleted) throw NotFound(`No attachment ${id}`);
    this.#deps.changes?.advanced(deleted.version);
    // `orphaned` was true when the delete committed; an upload of the same bytes may have come
    // since, so the decision is taken again under the blob's lock.
    if (deleted.orphaned) {
      await this.#deps.locks.withBlob(deleted.hash, (locked) => this.#removeIfUnused(deleted.hash, locked));
    }
    return { status: 'success', id, version: deleted.version };
  }

  /** Only with the blob's lock held. */
  async #removeIfUnused(hash: string, locked: LockedBlob): Promise<void> {
    if ((await locked.liveUsers()) === 0) await this.#deps.blobs.delete(hash);
  }

  /** The manifest's JSON text, in pieces (manifest.ts). */
  manifest(query: ManifestQuery): AsyncGenerator<string> {
    return manifestJson(this.#deps.index, query);
  }

  #now(): string {
    return this.#deps.clock().toISOString();
  }
}

/**
 * Whether a declared type says something about the content. The generic application/octet-stream,
 * which many clients send, does not; nor does a bare text/plain, which the multipart parser reports
 * for a part without a Content-Type (RFC 7578 §4.4's default), so that a photo.jpg sent without
 * one is not taken for text. A text/plain naming its charset was declared on purpose.
 */
function isInformative(type: DeclaredMediaType): boolean {
  if (type.essence === 'text/plain') return type.charset !== undefined;
  return type.essence !== 'application/octet-stream';
}

/** The type the id's (or else the file name's) extension names, when it names one other than the generic one. */
function typeOfExtension(id: string, filename: string): string | undefined {
  return [mime.lookup(id), mime.lookup(filename)].find(
    (type): type is string => type !== false && type !== 'application/octet-stream',
  );
}

/**
 * The part's own type (with its charset, nothing else) when it says something; otherwise guessed
 * from the id's (or file name's) extension.
 */
function contentTypeFor(id: string, filename: string, declared: string): string {
  const type = parseDeclaredMediaType(declared);
  if (type && isInformative(type)) return formatMediaType(type);
  return typeOfExtension(id, filename) ?? type?.essence ?? 'application/octet-stream';
}
