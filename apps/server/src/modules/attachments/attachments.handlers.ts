import type { components } from '@synk/contract';
import { parseJson } from '@synk/json';
import type { Request, Response } from 'express';
import type { AppContext } from '../../app-context.ts';
import { ifNoneMatchHits, rangeOrUnsatisfiable } from '../../http/conditional.ts';
import { HttpProblem } from '../../http/errors.ts';
import { type MultipartUpload, takeUpload } from '../../http/multipart.ts';
import { type Handler, sendJson } from '../../http/routes.ts';
import type { StagedBlob } from '../../lib/blob-storage.ts';
import { endStream, writeChunk } from '../../lib/streams.ts';
import { setUntrustedContentHeaders } from '../../lib/untrusted-content.ts';
import type { AttachmentRow } from '../sync/sync.store.ts';
import { checkAttachmentId, expectedDigest } from './attachments.service.ts';
import { mediaTypeEssence } from './media-type.ts';

type ManifestResponse = components['schemas']['AttachmentManifestResponse'];

interface Received {
  blob: StagedBlob;
  filename: string;
  contentType: string;
}

/** The id from the path, before routing has decoded params (multipart runs ahead of the router). */
function idFromPath(req: Request): string {
  const segment = req.path.split('/').at(-1) ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Streams the `file` part of `PUT /attachments/{id}` into blob storage as it arrives. */
export function attachmentUpload(ctx: AppContext): MultipartUpload<Received> {
  const { attachments } = ctx.services;
  return {
    field: 'file',
    before(req, res) {
      checkAttachmentId(idFromPath(req));
      res.locals.expectedSha256 = expectedDigest({
        contentDigest: req.header('content-digest'),
        contentSha256: req.header('x-content-sha256'),
      });
    },
    async sink(file, info, _req, res) {
      const blob = await attachments.receive(file, res.locals.expectedSha256 as string | undefined);
      return { blob, filename: info.filename, contentType: info.contentType };
    },
    discard: (received) => received.blob.discard(),
  };
}

/**
 * Types a browser shows without running anything: passive media, plain text and PDF. Anything
 * else (text/html, image/svg+xml and every other XML, scripts, unknown types) is a download.
 */
const INLINE_TYPES = /^(?:(?:image|audio|video)\/[\w.-]+|text\/plain|application\/pdf)$/;

/** What a 304 carries, as the 200 would (RFC 9110 §15.4.5): the validator and the caching rule. */
function setValidatorHeaders(res: Response, row: AttachmentRow): void {
  res.setHeader('ETag', `"${row.hash}"`);
  res.setHeader('Cache-Control', 'private, no-cache');
}

/** The headers of a 200 or 206 (GET) or of a HEAD: set only once no problem can be the answer. */
function setEntityHeaders(res: Response, row: AttachmentRow): void {
  setValidatorHeaders(res, row);
  // The type the client declared, whatever it is: the untrusted-content headers make it harmless.
  res.setHeader('Content-Type', row.content_type);
  setUntrustedContentHeaders(res);
  res.setHeader('Accept-Ranges', 'bytes');
  // The id is of [A-Za-z0-9._-] only (checked on every request), so quoting it is enough.
  const disposition = INLINE_TYPES.test(mediaTypeEssence(row.content_type)) ? 'inline' : 'attachment';
  res.setHeader('Content-Disposition', `${disposition}; filename="${row.attachment_id}"`);
}

/**
 * Answers 304 when `If-None-Match` names the attachment (evaluated before `Range`, RFC 9110
 * §13.2.2). Returns true when the response is finished.
 */
function answeredNotModified(req: Request, res: Response, row: AttachmentRow): boolean {
  if (!ifNoneMatchHits(req.header('if-none-match'), `"${row.hash}"`)) return false;
  setValidatorHeaders(res, row);
  res.status(304).end();
  return true;
}

type AttachmentOperation =
  | 'uploadAttachment'
  | 'downloadAttachment'
  | 'checkAttachmentExists'
  | 'deleteAttachment'
  | 'getAttachmentManifest';

export function attachmentsHandlers(ctx: AppContext): Record<AttachmentOperation, Handler> {
  const { attachments } = ctx.services;
  return {
    async uploadAttachment(req, res) {
      const received = takeUpload<Received>(res);
      if (!received)
        throw new HttpProblem(400, 'validation_failed', 'The multipart field "file" is required');
      const id = String(req.params.attachment_id);
      sendJson(
        res,
        'uploadAttachment',
        200,
        await attachments.store(id, received.blob, received.filename, received.contentType),
      );
    },
    async downloadAttachment(req, res) {
      // Opened before any header is set: a missing file is still a problem+json answer.
      const { row, content } = await attachments.open(String(req.params.attachment_id));
      try {
        if (answeredNotModified(req, res, row)) return;
        // A 416 is thrown before any of the attachment's headers are set.
        const range = rangeOrUnsatisfiable(req, `"${row.hash}"`, row.size, 'attachment');
        setEntityHeaders(res, row);
        if (range) {
          res.status(206);
          res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${row.size}`);
          res.setHeader('Content-Length', String(range.end - range.start + 1));
        } else {
          res.status(200);
          res.setHeader('Content-Length', String(row.size));
        }
        if (row.size === 0) {
          res.end();
          return;
        }
        try {
          await content.copyTo(res, range);
          res.end();
        } catch (err) {
          // Nothing sent yet (the first read failed): the error handler can still answer.
          if (!res.headersSent) throw err;
          // Headers are out: a client that went away, or a storage failure mid-body; cut the response.
          res.destroy(err as Error);
        }
      } finally {
        await content.close();
      }
    },
    async checkAttachmentExists(req, res) {
      const row = await attachments.head(String(req.params.attachment_id));
      // A HEAD is a GET without the body, conditions included (RFC 9110 §13.1.2); Range is for GET only.
      if (answeredNotModified(req, res, row)) return;
      setEntityHeaders(res, row);
      res.setHeader('Content-Length', String(row.size));
      res.status(200).end();
    },
    async deleteAttachment(req, res) {
      sendJson(res, 'deleteAttachment', 200, await attachments.delete(String(req.params.attachment_id)));
    },
    async getAttachmentManifest(req, res) {
      const { since_version } = req.body as { client_id: string; since_version: number };
      const { limit } = req.query as { limit?: number | string };
      const pieces = attachments.manifest({
        sinceVersion: since_version,
        limit: limit === undefined ? undefined : Number(limit),
        baseUrl: ctx.config.publicUrl ?? requestOrigin(req),
      });
      // The first piece is read before anything is sent: a database error is still a problem answer.
      const first = await pieces.next();
      if (ctx.config.validateResponses) {
        // Tests and development: the whole answer through the response validator.
        let text = first.done ? '' : first.value;
        for await (const piece of pieces) text += piece;
        sendJson(res, 'getAttachmentManifest', 200, parseJson(text) as ManifestResponse);
        return;
      }
      res.status(200).type('application/json');
      // A failure from here on cuts the answer (see problemHandler): never a short one that parses.
      if (!first.done) await writeChunk(res, first.value);
      for await (const piece of pieces) await writeChunk(res, piece);
      await endStream(res);
    },
  };
}

/** A host name or IPv4 address, or a bracketed IPv6 address, and an optional port. */
const HOST =
  /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_][A-Za-z0-9_-]{0,62})*\.?|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;

/**
 * The origin this request was sent to, for absolute URLs: its Host (or a trusted proxy's
 * X-Forwarded-Host) when that is a valid host[:port]; otherwise, as for an HTTP/1.0 request without
 * one, the address and port the request came in on. Never built from text that is not a host.
 */
function requestOrigin(req: Request): string {
  const protocol = req.protocol.toLowerCase() === 'https' ? 'https' : 'http';
  const host = req.host;
  const match = host && host.length <= 261 ? HOST.exec(host) : null;
  if (match && Number(match[1] ?? 0) <= 65_535 && URL.canParse(`${protocol}://${host}`))
    return `${protocol}://${host}`;
  const { localAddress, localPort } = req.socket;
  if (!localAddress) return `${protocol}://localhost`;
  const address = localAddress.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  const hostname = address.includes(':') ? `[${address.replace('%', '%25')}]` : address;
  return `${protocol}://${hostname}${localPort ? `:${localPort}` : ''}`;
}
