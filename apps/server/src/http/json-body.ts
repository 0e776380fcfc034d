import { parseJson } from '@synk/json';
import express, { type RequestHandler } from 'express';
import { HttpProblem } from './errors.ts';

const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * JSON request bodies, parsed with `parseJson` instead of body-parser's `JSON.parse`: V8 can decode
 * an escaped object key wrongly (nodejs/node#63785), and a record's `data` may use any text as a
 * key. Otherwise as `express.json()`: the same limits, charsets and errors (read by body-parser),
 * an empty body is `{}`, and only an object or an array is accepted at the top level. The raw
 * bytes are kept on `req.rawBody` for fingerprinting (push idempotency).
 */
export function jsonBody(limitBytes: number): RequestHandler[] {
  return [
    express.text({
      type: JSON_TYPES,
      limit: limitBytes,
      defaultCharset: 'utf-8',
      verify: (req, _res, buf) => {
        (req as { rawBody?: Buffer }).rawBody = buf;
      },
    }),
    (req, _res, next) => {
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
        req.body = parseJson(text);
      } catch {
        return next(new HttpProblem(400, 'malformed_json', 'The request body is not valid JSON'));
      }
      next();
    },
  ];
}
