import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Request, RequestHandler, Response } from 'express';
import { HttpProblem, Invalid } from './errors.ts';
import type { ResolvedOperation } from './operations.ts';
import { watchPartContentType } from './part-content-type.ts';

export interface FileInfo {
  filename: string;
  /** The part's `Content-Type` as sent, parameters included; `text/plain` when it had none (RFC 7578 §4.4). */
  contentType: string;
}

/** How one multipart operation takes its file: streamed straight into `sink`, never buffered. */
export interface MultipartUpload<T> {
  /** The form field that carries the file. */
  field: string;
  /** Checks that must pass before any of the body is read (e.g. the target id). */
  before?(req: Request, res: Response): void;
  /** Consumes the file stream completely, or fails (e.g. too large); on failure it must leave nothing behind. */
  sink(file: Readable, info: FileInfo, req: Request, res: Response): Promise<T>;
  /**
   * Removes what `sink` kept, for a request that ends without its handler taking the upload
   * (`takeUpload`): rejected by the parser, the validator or anything else after the body was read.
   */
  discard(result: T): Promise<void>;
}

const LIMITS = { files: 1, fields: 20, fieldSize: 64 * 1024, parts: 30, headerPairs: 100 };

/** The sink's result, until the handler takes it or the request ends. */
interface Pending {
  result: unknown;
  state: 'waiting' | 'taken' | 'discarded';
}
const pending = new WeakMap<Response, Pending>();

/**
 * The upload `multipartUploads` received for this request, if any; from here on the caller owns it
 * (and must remove it when done). A request whose response is already over (the client went away)
 * has had its upload discarded: that is a 400 `request_aborted`.
 */
export function takeUpload<T>(res: Response): T | undefined {
  const upload = pending.get(res);
  if (!upload) return undefined;
  if (upload.state === 'discarded')
    throw new HttpProblem(400, 'request_aborted', 'The request ended before its upload was used');
  upload.state = 'taken';
  return upload.result as T;
}

/**
 * Parses multipart/form-data bodies of the operations named in `uploads`, before the validator runs:
 * the file goes to the operation's sink while it arrives, the other fields become `req.body`, and
 * the file field is marked present (`req.body[field] = ''`) so the contract's `required` check
 * applies. The handler gets the sink's result with `takeUpload`. A failure answers at once: the
 * rest of the body is discarded (with `Connection: close`), the file stream is destroyed so the
 * sink gives up (removing what it wrote), and a result the sink already produced is discarded, as
 * is one no handler took by the time the response ends.
 */
export function multipartUploads(uploads: Partial<Record<string, MultipartUpload<unknown>>>): RequestHandler {
  return (req, res, next) => {
    const operation = res.locals.operation as ResolvedOperation | undefined;
    const upload = operation ? uploads[operation.operationId] : undefined;
    if (!upload || !/^multipart\/form-data\b/i.test(req.header('content-type') ?? '')) {
      next();
      return;
    }
    try {
      upload.before?.(req, res);
    } catch (err) {
      next(err);
      return;
    }

    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: LIMITS });
    } catch {
      next(Invalid('The multipart body has no boundary', undefined, 'malformed_multipart'));
      return;
    }
    const partContentType = watchPartContentType(parser);
    const discard = (result: unknown) =>
      upload.discard(result).catch((err: unknown) => req.log?.error({ err }, 'could not remove an upload'));
    const fields: Record<string, string> = {};
    let file: Readable | undefined;
    let sinking: Promise<unknown> | undefined;
    // Once the request has been passed on or has failed, nothing here may call `next` again.
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      req.unpipe(parser);
      parser.destroy();
      // The sink's pipeline ends with an error, closing and removing its partial file.
      file?.destroy(new Error('the upload was abandoned'));
      sinking?.then(discard, () => undefined);
      req.resume();
      if (!res.headersSent) res.setHeader('Connection', 'close');
      next(err);
    };
    const aborted = () => fail(new HttpProblem(400, 'request_aborted', 'The client aborted the upload'));

    parser.on('file', (name, stream, info) => {
      // Errors reach the sink through its own pipeline; this keeps a late one (client gone) from being unhandled.
      stream.on('error', () => undefined);
      if (settled || name !== upload.field || sinking) {
        stream.resume();
        if (!settled && sinking && name === upload.field)
          fail(Invalid(`Only one "${upload.field}" file is allowed`));
        return;
      }
      file = stream;
      const contentType = partContentType() ?? info.mimeType;
      sinking = upload.sink(stream, { filename: info.filename ?? '', contentType }, req, res);
      sinking.catch(fail);
    });
    parser.on('field', (name, value) => {
      fields[name] = value;
    });
    parser.on('filesLimit', () => fail(Invalid('Only one file is allowed in the multipart body')));
    parser.on('partsLimit', () => fail(Invalid('Too many parts in the multipart body')));
    parser.on('fieldsLimit', () => fail(Invalid('Too many fields in the multipart body')));
    parser.on('error', () =>
      fail(Invalid('The multipart body is malformed', undefined, 'malformed_multipart')),
    );
    parser.on('close', () => {
      if (settled) return;
      (sinking ?? Promise.resolve(undefined)).then(
        (result) => {
          if (settled) return;
          if (res.closed) {
            // The client left after sending everything, before the file was complete on disk.
            aborted();
            return;
          }
          settled = true;
          req.body = sinking ? { ...fields, [upload.field]: '' } : fields;
          if (sinking) {
            const entry: Pending = { result, state: 'waiting' };
            pending.set(res, entry);
            // 'close' comes after the response is sent, or when the connection is gone.
            res.once('close', () => {
              if (entry.state !== 'waiting') return;
              entry.state = 'discarded';
              discard(result);
            });
          }
          next();
        },
        () => undefined,
      );
    });
    // A request that closes before its body is complete was aborted (the connection is gone).
    req.on('close', () => {
      if (!req.complete) aborted();
    });
    req.pipe(parser);
  };
}
