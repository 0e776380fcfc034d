import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Request, Response } from 'express';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../db/unavailable.ts';
import { HttpProblem, type ProblemItem } from './errors.ts';

/** Stable `code` per status for errors that do not carry their own. */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'validation_failed',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  416: 'range_not_satisfiable',
  422: 'unprocessable_entity',
  429: 'too_many_requests',
  500: 'internal_error',
  501: 'not_implemented',
  503: 'service_unavailable',
};

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  request_id: string;
  errors?: ProblemItem[];
  [extension: string]: unknown;
}

export function problemType(code: string): string {
  return `urn:synk:problem:${code}`;
}

/**
 * Headers a handler may have set for the resource's representation before it failed. A problem is
 * a representation of its own, so none of them may go out with it: a 416 naming the attachment's
 * ETag or file name would describe a body it does not carry (RFC 9110 §15.5.17 asks only for
 * a Content-Range naming the size, which the 416 problem sets itself).
 */
const REPRESENTATION_HEADERS = [
  'Accept-Ranges',
  'Content-Disposition',
  'Content-Encoding',
  'Content-Language',
  'Content-Length',
  'Content-Range',
  'ETag',
  'Last-Modified',
];

export function sendProblem(req: Request, res: Response, problem: HttpProblem): void {
  const body: ProblemBody = {
    ...problem.extensions,
    type: problemType(problem.code),
    title: STATUS_CODES[problem.status] ?? 'Error',
    status: problem.status,
    detail: problem.message,
    instance: req.originalUrl.split('?')[0] ?? '/',
    code: problem.code,
    request_id: String(req.id ?? ''),
  };
  if (problem.errors && problem.errors.length > 0) body.errors = problem.errors;
  for (const name of REPRESENTATION_HEADERS) res.removeHeader(name);
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  res.status(problem.status).type('application/problem+json');
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  res.send(JSON.stringify(body));
}

/** express-openapi-validator's error shape. */
interface ValidatorError {
  status: number;
  message: string;
  errors?: { path?: string; message: string; errorCode?: string }[];
  headers?: Record<string, string>;
}

/** body-parser's error shape. */
interface BodyParserError {
  type: string;
  status: number;
  limit?: number;
}

function isBodyParserError(err: unknown): err is BodyParserError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as BodyParserError).type === 'string' &&
    'status' in err
  );
}

/** An http-errors style error of the client's making (`expose`: its message is safe to show). */
function isClientHttpError(err: unknown): err is { status: number; expose: true; code?: unknown } {
  if (typeof err !== 'object' || err === null) return false;
  const { status, expose } = err as { status?: unknown; expose?: unknown };
  return (
    expose === true &&
    typeof status === 'number' &&
    status >= 400 &&
    status < 500 &&
    !Array.isArray((err as ValidatorError).errors)
  );
}

function isValidatorError(err: unknown): err is ValidatorError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as ValidatorError).status === 'number' &&
    Array.isArray((err as ValidatorError).errors)
  );
}

/** Maps anything thrown while handling a request onto an HttpProblem; unknown errors become a bare 500. */
export function toProblem(err: unknown): HttpProblem {
  if (err instanceof HttpProblem) return err;
  if (
    isClientHttpError(err) &&
    typeof err.code === 'string' &&
    typeof (err as { errno?: unknown }).errno === 'number'
  ) {
    // body-parser passes on a body that does not decompress (gzip, deflate, br) as zlib's error
    // (`errno`, and a code such as Z_DATA_ERROR or ERR__ERROR_FORMAT_PADDING_1), marked 400.
    return new HttpProblem(400, 'malformed_body', `The request body could not be decompressed (${err.code})`);
  }
  if (isBodyParserError(err)) {
    switch (err.type) {
      case 'entity.parse.failed':
        return new HttpProblem(400, 'malformed_json', 'The request body is not valid JSON');
      case 'entity.too.large':
        return new HttpProblem(
          413,
          'payload_too_large',
          `The request body exceeds the limit of ${err.limit} bytes`,
        );
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return new HttpProblem(415, 'unsupported_media_type', 'Unsupported content encoding or charset');
      case 'request.aborted':
        return new HttpProblem(400, 'request_aborted', 'The client aborted the request');
      default:
        if (err.status >= 400 && err.status < 500) {
          return new HttpProblem(
            err.status,
            CODE_BY_STATUS[err.status] ?? 'bad_request',
            'The request body could not be read',
          );
        }
    }
  }
  if (isClientHttpError(err)) {
    return new HttpProblem(
      err.status,
      CODE_BY_STATUS[err.status] ?? 'bad_request',
      'The request body could not be read',
    );
  }
  if (isValidatorError(err) && err.status >= 400 && err.status < 500) {
    const status = err.status;
    const errors = (err.errors ?? []).map((e) => ({
      ...(e.path ? { path: e.path } : {}),
      message: e.message,
      ...(e.errorCode ? { code: e.errorCode.replace(/\.openapi\.validation$/, '') } : {}),
    }));
    const detail = describeValidatorError(status, err.message);
    return new HttpProblem(status, CODE_BY_STATUS[status] ?? 'bad_request', detail, {
      errors,
      headers: err.headers ?? {},
    });
  }
  if (isDatabaseUnavailable(err)) {
    return new HttpProblem(503, 'database_unavailable', 'The database is unavailable; try again shortly', {
      headers: { 'Retry-After': String(DATABASE_RETRY_AFTER_SECONDS) },
    });
  }
  return new HttpProblem(500, 'internal_error', 'An unexpected error occurred');
}

function describeValidatorError(status: number, message: string): string {
  switch (status) {
    case 404:
      return 'No such route';
    case 405:
      return 'Method not allowed on this route';
    case 415:
      return 'Unsupported content type for this operation';
    case 413:
      return 'The request body is too large';
    default:
      return status === 400 ? 'The request is invalid' : message;
  }
}

export const problemHandler: ErrorRequestHandler = (err, req, res, _next) => {
  if (res.headersSent && res.destroyed) {
    // The client went away mid-answer (a download cancelled, a device out of coverage): its
    // stream's "premature close" is the usual end of an abandoned download, not a server fault.
    req.log?.info(
      { err: { message: String((err as Error)?.message ?? err) } },
      'answer abandoned by the client',
    );
    return;
  }
  const problem = toProblem(err);
  if (err instanceof HttpProblem && problem.status === 503) {
    // A deliberate "not now, retry later" (export_busy): expected
    // under load, not a fault worth an error and a stack trace per refusal.
    req.log?.warn({ code: problem.code }, 'request deferred');
  } else if (problem.status >= 500) {
    req.log?.error({ err }, 'request failed');
  } else {
    req.log?.debug({ err: { message: String((err as Error)?.message ?? err) } }, 'request rejected');
  }
  if (res.headersSent) {
    // The response is already streaming (an export, a manifest, a download): all we can do is cut
    // it, so the client sees a broken body (a broken ZIP, unparsable JSON), never a short one it
    // could take for whole.
    res.destroy();
    return;
  }
  sendProblem(req, res, problem);
};
