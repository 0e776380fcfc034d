import { createRequire } from 'node:module';
import { specPath } from '@synk/contract';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { integerQuery } from './integer-query.ts';
import type { ResolvedOperation } from './operations.ts';

type PathToRegexp = (path: string, options?: { sensitive?: boolean; strict?: boolean }) => unknown;

/**
 * express-openapi-validator 5.6 finds a request's operation by compiling the path-to-regexp
 * matcher of every route it scans, on every request (about a tenth of the server's time on small
 * sync requests). Upstream caches the compiled matchers in an open pull request
 * (cdimascio/express-openapi-validator#1217); until it ships, the validator's copy of
 * path-to-regexp compiles each (route, options) once. The result is a RegExp without the `g` flag
 * plus its keys, both only read by the validator, so sharing them is safe.
 */
function cacheRouteMatchers(): void {
  const here = createRequire(import.meta.url);
  const validatorRequire = createRequire(here.resolve('express-openapi-validator'));
  const module = validatorRequire('path-to-regexp') as { pathToRegexp: PathToRegexp & { cached?: true } };
  if (module.pathToRegexp.cached) return;
  const compile = module.pathToRegexp;
  const compiled = new Map<string, unknown>();
  const cached: PathToRegexp & { cached?: true } = (path, options) => {
    // Only string paths are cached (all the validator passes); anything else compiles as before.
    if (typeof path !== 'string' || compiled.size > 10_000) return compile(path, options);
    const key = `${options?.sensitive ? 's' : '-'}${options?.strict ? 's' : '-'}${path}`;
    let matcher = compiled.get(key);
    if (matcher === undefined) {
      matcher = compile(path, options);
      compiled.set(key, matcher);
    }
    return matcher;
  };
  cached.cached = true;
  module.pathToRegexp = cached;
}

/**
 * HEAD is answered by the GET operation wherever the contract declares no HEAD of its own
 * (operations.ts resolves it so, and Express runs the GET route for it), but the validator looks
 * operations up by `req.method` and would answer 405. So while it runs, such a request is a GET;
 * it is a HEAD again before anything else sees it, error handlers included.
 */
const headAsGet: RequestHandler = (req, res, next) => {
  const operation = res.locals.operation as ResolvedOperation | undefined;
  if (req.method === 'HEAD' && operation?.method === 'get') {
    req.method = 'GET';
    res.locals.headAsGet = true;
  }
  next();
};

/**
 * The validator also takes the first contract path that matches a request's path, whatever its
 * method: `DELETE /users/create` (a user named `create`) or `PUT /attachments/manifest` (an
 * attachment named `manifest`) met the literal `/users/create` or `/attachments/manifest` first and
 * were answered 405, though they are for `/users/{username}` and `/attachments/{attachment_id}`
 * (operations.ts resolves them so). While it runs, each path parameter's value starts with a
 * percent-escape of its first character, which no literal path matches and the validator decodes.
 */
const parametersAsParameters: RequestHandler = (req, res, next) => {
  const operation = res.locals.operation as ResolvedOperation | undefined;
  if (!operation?.path.includes('{')) return next();
  const queryAt = req.originalUrl.indexOf('?');
  const pathname = queryAt === -1 ? req.originalUrl : req.originalUrl.slice(0, queryAt);
  const segments = pathname.split('/');
  const template = operation.path.split('/');
  if (segments.length !== template.length) return next();
  const escaped = segments.map((segment, i) =>
    template[i]?.startsWith('{') && /^[A-Za-z0-9._~-]/.test(segment)
      ? `%${segment.charCodeAt(0).toString(16).toUpperCase()}${segment.slice(1)}`
      : segment,
  );
  res.locals.validatedUrl = req.originalUrl;
  req.originalUrl = escaped.join('/') + (queryAt === -1 ? '' : req.originalUrl.slice(queryAt));
  next();
};

function restoreRequest(req: Request, res: Response): void {
  if (res.locals.headAsGet) {
    req.method = 'HEAD';
    res.locals.headAsGet = false;
  }
  if (typeof res.locals.validatedUrl === 'string') {
    req.originalUrl = res.locals.validatedUrl;
    res.locals.validatedUrl = undefined;
  }
}
const restoreAfterValidation: RequestHandler = (req, res, next) => {
  restoreRequest(req, res);
  next();
};
const restoreOnError: ErrorRequestHandler = (err, req, res, next) => {
  restoreRequest(req, res);
  next(err);
};

/** Request validation against openapi.yaml; responses too when `validateResponses` (tests, development). */
export function openApiValidator(validateResponses: boolean): (RequestHandler | ErrorRequestHandler)[] {
  cacheRouteMatchers();
  const validator = OpenApiValidator.middleware({
    apiSpec: specPath,
    validateApiSpec: true,
    validateRequests: { allowUnknownQueryParameters: true },
    validateResponses,
    // Route resolution and authentication already ran (operations.ts, authenticate.ts), before the body was read.
    validateSecurity: false,
    ignoreUndocumented: false,
    // Multipart bodies are streamed by their own handlers (attachments, bundles), never buffered by multer.
    fileUploader: false,
  }) as RequestHandler[];
  return [
    headAsGet,
    parametersAsParameters,
    integerQuery,
    ...validator,
    restoreAfterValidation,
    restoreOnError,
  ];
}
