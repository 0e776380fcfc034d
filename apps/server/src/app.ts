import cors from 'cors';
import express, { type Express } from 'express';
import type { AppContext } from './app-context.ts';
import { apiVersionNegotiation } from './http/api-version.ts';
import { authenticate } from './http/authenticate.ts';
import { NotFound } from './http/errors.ts';
import { jsonBody } from './http/json-body.ts';
import { multipartUploads } from './http/multipart.ts';
import { resolveOperations } from './http/operations.ts';
import { problemHandler } from './http/problem.ts';
import { ormRequestContext, requestLogging } from './http/request-context.ts';
import { type Route, registerRoutes } from './http/routes.ts';
import { untrustedProxyWarning } from './http/untrusted-proxy.ts';
import { openApiValidator } from './http/validator.ts';
import { attachmentUpload } from './modules/attachments/attachments.handlers.ts';
import { attachmentsRoutes } from './modules/attachments/attachments.routes.ts';
import { authRoutes } from './modules/auth/auth.routes.ts';
import { bundleUpload, foldBundleDownloadPath } from './modules/bundles/bundles.handlers.ts';
import { bundlesRoutes } from './modules/bundles/bundles.routes.ts';
import { exportsRoutes } from './modules/exports/exports.routes.ts';
import { healthRoutes } from './modules/health/health.routes.ts';
import { metaRoutes } from './modules/meta/meta.routes.ts';
import { syncRoutes } from './modules/sync/sync.routes.ts';
import { usersRoutes } from './modules/users/users.routes.ts';

const CORS_ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'if-none-match',
  'x-api-version',
  'idempotency-key',
  'x-request-id',
  // Resuming an event stream (GET /sync/events) from a browser app.
  'last-event-id',
  // Attachment uploads and downloads from browser apps (the SDK sends a digest with every upload).
  'content-digest',
  'x-content-sha256',
  'range',
  'if-range',
];
const CORS_EXPOSED_HEADERS = [
  'etag',
  'x-api-version-used',
  'x-is-preview',
  'x-request-id',
  'idempotent-replayed',
  'retry-after',
  'content-range',
  'accept-ranges',
  'content-disposition',
];

/** Every module's route table; the contract test checks these cover openapi.yaml exactly. */
export function allRoutes(ctx: AppContext): Route[] {
  return [
    ...healthRoutes(ctx),
    ...metaRoutes(ctx),
    ...authRoutes(ctx),
    ...usersRoutes(ctx),
    ...syncRoutes(ctx),
    ...attachmentsRoutes(ctx),
    ...bundlesRoutes(ctx),
    ...exportsRoutes(ctx),
  ];
}

/** Builds the HTTP application. Never listens: main.ts (or a test) decides where. */
export function createApp(ctx: AppContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', ctx.config.trustProxy);
  app.set('etag', false);

  app.use(requestLogging(ctx.logger));
  app.use(untrustedProxyWarning(ctx.config.trustProxy, ctx.logger));
  app.use(
    cors({
      origin: ctx.config.corsOrigins.includes('*') ? true : [...ctx.config.corsOrigins],
      allowedHeaders: CORS_ALLOWED_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      maxAge: 600,
      // Preflights go on to the routes: one to a path the server does not have is a 404.
      preflightContinue: true,
    }),
  );
  app.use(apiVersionNegotiation);
  app.use(foldBundleDownloadPath);
  app.use(resolveOperations(ctx.spec));
  app.use(authenticate(ctx.services.auth));
  const routes = allRoutes(ctx);
  const flagged = (flag: 'largeBody' | 'exactNumbers') =>
    new Set(routes.filter((r) => r[flag]).map((r) => r.operationId));
  app.use(
    jsonBody(ctx.config.limits.jsonBodyBytes, {
      largeBodies: flagged('largeBody'),
      exactNumbers: flagged('exactNumbers'),
    }),
  );
  app.use(multipartUploads({ uploadAttachment: attachmentUpload(ctx), pushAppBundle: bundleUpload(ctx) }));
  app.use(openApiValidator(ctx.config.validateResponses));
  const withoutOrm = new Set(routes.filter((r) => r.ormContext === false).map((r) => r.operationId));
  app.use(ormRequestContext(ctx.orm, withoutOrm));

  const router = express.Router();
  registerRoutes(router, routes);
  app.use(router);

  app.use((_req, _res, next) => next(NotFound('No such route')));
  app.use(problemHandler);
  return app;
}
