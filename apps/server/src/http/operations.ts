import type { RequestHandler } from 'express';
import { HttpProblem, NotFound } from './errors.ts';
import {
  listOperations,
  type OpenApiDocument,
  type OpenApiOperation,
  type OpenApiParameter,
} from './openapi.ts';
import type { HttpMethod } from './routes.ts';

export type Role = 'read-only' | 'read-write' | 'admin';

/** What the contract says about the operation a request is for. */
export interface ResolvedOperation {
  operationId: string;
  method: HttpMethod;
  path: string;
  /** `undefined` for public operations. */
  minRole: Role | undefined;
  /** The media types its request body may have; empty when it takes none. */
  bodyTypes: readonly string[];
  /** Its query parameters whose schema is an integer (checked as decimal text by strict-query.ts). */
  integerQuery: readonly string[];
}

interface CompiledPath {
  path: string;
  pattern: RegExp;
  methods: Map<HttpMethod, ResolvedOperation>;
}

function compilePath(template: string): RegExp {
  const source = template
    .split(/(\{[A-Za-z0-9_]+\})/)
    .map((part) => (part.startsWith('{') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

/** An operation's parameters with `$ref`s to `#/components/parameters/…` resolved. */
function parametersOf(doc: OpenApiDocument, op: OpenApiOperation): OpenApiParameter[] {
  const shared = (doc.components as { parameters?: Record<string, OpenApiParameter> } | undefined)
    ?.parameters;
  return (op.parameters ?? []).map((p) =>
    p.$ref ? (shared?.[p.$ref.replace('#/components/parameters/', '')] ?? p) : p,
  );
}

function minRoleOf(doc: OpenApiDocument, op: OpenApiOperation): Role | undefined {
  const security = op.security ?? (doc.security as OpenApiOperation['security']) ?? [];
  if (security.length === 0) return undefined;
  return op['x-min-role'] ?? 'read-only';
}

/**
 * Finds the contract operation for each request before anything reads the body, so the check order
 * of spec §1 holds: route (404/405) → authentication (401) → role (403) → input (400/413/415/422).
 */
export function resolveOperations(doc: OpenApiDocument): RequestHandler {
  const compiled = new Map<string, CompiledPath>();
  for (const { method, path, operation } of listOperations(doc)) {
    const entry = compiled.get(path) ?? { path, pattern: compilePath(path), methods: new Map() };
    entry.methods.set(method, {
      operationId: operation.operationId,
      method,
      path,
      minRole: minRoleOf(doc, operation),
      bodyTypes: Object.keys(operation.requestBody?.content ?? {}),
      integerQuery: parametersOf(doc, operation)
        .filter((p) => p.in === 'query' && p.schema?.type === 'integer')
        .map((p) => p.name!),
    });
    compiled.set(path, entry);
  }
  // Literal segments win over parameters (`/users/create` before `/users/{username}`).
  const paths = [...compiled.values()].sort((a, b) => specificity(b.path) - specificity(a.path));

  return (req, res, next) => {
    const candidates = paths.filter((p) => p.pattern.test(req.path));
    if (candidates.length === 0) {
      next(NotFound('No such route'));
      return;
    }
    if (req.method === 'OPTIONS') {
      // A route's options (RFC 9110 §9.3.7), and a CORS preflight's answer: the CORS middleware
      // before this one has set its headers and let it through, so an unknown path is a 404 here.
      res.setHeader('Allow', `${allowedMethods(candidates)}, OPTIONS`);
      res.status(204).end();
      return;
    }
    const method = req.method.toLowerCase() as HttpMethod;
    for (const candidate of candidates) {
      const operation =
        candidate.methods.get(method) ?? (method === 'head' ? candidate.methods.get('get') : undefined);
      if (operation) {
        res.locals.operation = operation;
        next();
        return;
      }
    }
    const allow = allowedMethods(candidates);
    next(
      new HttpProblem(405, 'method_not_allowed', `${req.method} is not allowed here; allowed: ${allow}`, {
        headers: { Allow: allow },
      }),
    );
  };
}

/** The methods of the paths a request's path matches, as an `Allow` header lists them. */
function allowedMethods(candidates: CompiledPath[]): string {
  const allowed = new Set(candidates.flatMap((c) => [...c.methods.keys()]));
  if (allowed.has('get')) allowed.add('head');
  return [...allowed].map((m) => m.toUpperCase()).join(', ');
}

function specificity(path: string): number {
  return path.split('/').reduce((score, segment) => score * 2 + (segment.startsWith('{') ? 0 : 1), 0);
}
