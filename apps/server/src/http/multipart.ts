import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Request, RequestHandler, Response } from 'express';
import { HttpProblem, Invalid } from './errors.ts';
import type { ResolvedOperation } from './operations.ts';

export interface FileInfo {
  filename: string;
  mimeType: string;
}

/** How one multipart operation takes its file: streamed straight into `sink`, never buffered. */
export interface MultipartUpload<T> {
  /** The form field that carries the file. */
  field: string;
  /** Checks that must pass before any of the body is read (e.g. the target id). */
  before?(req: Request, res: Response): void;
  /** Consumes the file stream completely, or fails (e.g. too large); on failure it must leave nothing behind. */
  sink(file: Readable, info: FileInfo, req: Request, res: Response): Promise<T>;
}

const LIMITS = { files: 1, fields: 20, fieldSize: 64 * 1024, parts: 30, headerPairs: 100 };

/**
 * Parses multipart/form-data bodies of the operations named in `uploads`, before the validator runs:
 * the file goes to the operation's sink while it arrives, the other fields become `req.body`, and
 * the file field is marked present (`req.body[field] = ''`) so the contract's `required` check
 * applies. The sink's result is in `res.locals.upload`. A sink failure answers at once (and the
 * rest of the body is discarded, with `Connection: close`).
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
    const fields: Record<string, string> = {};
    let sinking: Promise<unknown> | undefined;
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      req.resume();
      res.setHeader('Connection', 'close');
      next(err);
    };

    parser.on('file', (name, stream, info) => {
      // Errors reach the sink through its own pipeline; this keeps a late one (client gone) from being unhandled.
      stream.on('error', () => undefined);
      if (name !== upload.field || sinking) {
        stream.resume();
        if (sinking && name === upload.field) fail(Invalid(`Only one "${upload.field}" file is allowed`));
        return;
      }
      sinking = upload.sink(stream, { filename: info.filename ?? '', mimeType: info.mimeType }, req, res);
      sinking.catch(fail);
    });
    parser.on('field', (name, value) => {
      fields[name] = value;
    });
    parser.on('partsLimit', () => fail(Invalid('Too many parts in the multipart body')));
    parser.on('fieldsLimit', () => fail(Invalid('Too many fields in the multipart body')));
    parser.on('error', () =>
      fail(Invalid('The multipart body is malformed', undefined, 'malformed_multipart')),
    );
    parser.on('close', () => {
      if (failed) return;
      (sinking ?? Promise.resolve(undefined)).then(
        (result) => {
          if (failed) return;
          req.body = sinking ? { ...fields, [upload.field]: '' } : fields;
          res.locals.upload = result;
          next();
        },
        () => undefined,
      );
    });
    req.on('aborted', () => fail(new HttpProblem(400, 'request_aborted', 'The client aborted the upload')));
    req.pipe(parser);
  };
}
