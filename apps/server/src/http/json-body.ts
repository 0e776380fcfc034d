import type { IncomingHttpHeaders } from 'node:http';
import { parseJson, parseJsonExact } from '@synk/json';
import express, { type RequestHandler } from 'express';
import { HttpProblem } from './errors.ts';
import type { ResolvedOperation } from './operations.ts';

const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * Every JSON body but those of the operations whose routes say `largeBody` (record pushes, and
 * pulls naming many form types) is small (a login, a user, a manifest request): read up to this
 * and not decompressed. A 14 KB gzip body inflating to 14 MB of nested arrays held the event loop
 * ~3 s per request on the anonymous /auth/login and /auth/refresh, and 40 of them held open took
 * 600 MB.
 */
const SMALL_BODY_BYTES = 64 * 1024;

/** Whether the request carries a body at all (RFC 9112 §6.3: a Transfer-Encoding, or a Content-Length above 0). */
function hasBody(headers: IncomingHttpHeaders): boolean {
  return (
    headers['transfer-encoding'] !== undefined ||
    (headers['content-length'] !== undefined && headers['content-length'] !== '0')
  );
}

/**
 * A request with no body at all and no Content-Type (`curl -X POST`, a client that sends nothing
 * where the body is optional) was a 415 "unsupported media type undefined". Where the operation
 * takes JSON it is read as an empty JSON body, so it gets the 400 naming the missing fields, or
 * passes where nothing is required (a logout); elsewhere it is a 400 naming the body expected.
 * The body is set here: body-parser reads nothing when no header announces a body (no
 * Content-Length, as `curl -X POST` sends it), which left it undefined and the 400 said only
 * "must have required property 'body'".
 */
const bodylessRequest: RequestHandler = (req, res, next) => {
  const types = (res.locals.operation as ResolvedOperation | undefined)?.bodyTypes ?? [];
  if (types.length === 0 || req.headers['content-type'] !== undefined || hasBody(req.headers)) return next();
  if (types.includes('application/json')) {
    req.headers['content-type'] = 'application/json';
    req.body = {};
    return next();
  }
  next(
    new HttpProblem(400, 'validation_failed', `The request has no body; it takes ${types.join(' or ')}`, {
      errors: [{ path: '/body', message: 'required' }],
    }),
  );
};

/**
 * JSON request bodies, parsed with `parseJson` instead of body-parser's `JSON.parse`: V8 can decode
 * an escaped object key wrongly (nodejs/node#63785), and a record's `data` may use any text as a
 * key. Otherwise as `express.json()`: the same limits, charsets and errors (read by body-parser),
 * an empty body is `{}`, and only an object or an array is accepted at the top level; only the
 * operations in `largeBodies` take large or compressed bodies (up to `limitBytes`), and those in
 * `exactNumbers` (bodies of field data) keep integers too long for a double digit for digit
 * (parseJsonExact), where JSON.parse would round them. The raw
 * bytes are kept on `req.rawBody` for fingerprinting (push idempotency).
 */
export function jsonBody(
  limitBytes: number,
  { largeBodies, exactNumbers }: { largeBodies: ReadonlySet<string>; exactNumbers: ReadonlySet<string> },
): RequestHandler[] {
  const options = (limit: number, inflate: boolean) =>
    express.text({
      type: JSON_TYPES,
      limit,
      inflate,
      defaultCharset: 'utf-8',
      verify: (req, _res, buf) => {
        (req as { rawBody?: Buffer }).rawBody = buf;
      },
    });
  const large = options(limitBytes, true);
  const small = options(Math.min(limitBytes, SMALL_BODY_BYTES), false);
  return [
    bodylessRequest,
    (req, res, next) => {
      const operation = (res.locals.operation as ResolvedOperation | undefined)?.operationId;
      return (operation !== undefined && largeBodies.has(operation) ? large : small)(req, res, next);
    },
    (req, res, next) => {
      if (typeof req.body !== 'string' || !req.is(JSON_TYPES)) return next();
      const text: string = req.body;
      if (text.length === 0) {
        req.body = {};
        return next();
      }
      const first = /\S/.exec(text)?.[0];
      if (first !== '{' && first !== '[')
        return next(
          new HttpProblem(400, 'malformed_json', 'The request body must be a JSON object or array'),
        );
      try {
        const operation = (res.locals.operation as ResolvedOperation | undefined)?.operationId ?? '';
        req.body = exactNumbers.has(operation) ? parseJsonExact(text) : parseJson(text);
      } catch {
        return next(new HttpProblem(400, 'malformed_json', 'The request body is not valid JSON'));
      }
      next();
    },
  ];
}
