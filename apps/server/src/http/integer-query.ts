import type { RequestHandler } from 'express';
import { Invalid } from './errors.ts';
import type { ResolvedOperation } from './operations.ts';

const DECIMAL_INTEGER = /^-?[0-9]+$/;

/**
 * The validator coerces query text to numbers as JavaScript does, so `limit=1e2`, `limit=0x10`,
 * `limit=%205` and `limit=5.0` all passed as integers. An integer query parameter is decimal digits
 * (with an optional minus; the contract's bounds are still the validator's), as 1.0.3's Go server
 * parsed it; anything else is a 400 here, before the validator coerces it.
 */
export const integerQuery: RequestHandler = (req, res, next) => {
  const operation = res.locals.operation as ResolvedOperation | undefined;
  const query = req.query as Record<string, unknown>;
  const errors = (operation?.integerQuery ?? [])
    .filter((name) => typeof query[name] === 'string' && !DECIMAL_INTEGER.test(query[name]))
    .map((name) => ({ path: `/query/${name}`, message: 'must be integer (decimal digits)', code: 'type' }));
  // The same answer as the validator's for `limit=abc`.
  next(errors.length > 0 ? Invalid('The request is invalid', errors) : undefined);
};
