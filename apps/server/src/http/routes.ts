import type { operations } from '@synk/contract';
import type { Request, Response, Router } from 'express';

export type HttpMethod = 'get' | 'head' | 'post' | 'put' | 'patch' | 'delete';
export type OperationId = keyof operations;

export type Handler = (req: Request, res: Response) => Promise<void> | void;

/** One row of a module's route table: which contract operation a handler serves. */
export interface Route {
  operationId: OperationId;
  method: HttpMethod;
  /** The path exactly as written in openapi.yaml, with `{param}` placeholders. */
  path: string;
  handler: Handler;
  /** `false`: the handler never uses the ORM (the sync store has its own connection), so no EntityManager is forked for it. */
  ormContext?: false;
  /**
   * `true`: the operation takes JSON bodies up to MAX_JSON_BODY_BYTES, compressed or not; every
   * other JSON body is small and read as sent (see json-body.ts).
   */
  largeBody?: true;
  /**
   * `true`: the body carries field data, where an integer too long for a double keeps its digits
   * (parseJsonExact; see json-body.ts).
   */
  exactNumbers?: true;
}

/** `/users/{username}` → `/users/:username` (Express 5 / path-to-regexp 8 syntax). */
export function toExpressPath(openApiPath: string): string {
  return openApiPath.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
}

export function registerRoutes(router: Router, routes: readonly Route[]): void {
  // Express answers HEAD with the first matching GET route, so explicit HEAD routes must come first.
  const ordered = [...routes].sort((a, b) => Number(b.method === 'head') - Number(a.method === 'head'));
  for (const route of ordered) {
    const { handler } = route;
    router[route.method](toExpressPath(route.path), async (req, res) => {
      await handler(req, res);
    });
  }
}

type JsonContent<R> = R extends { content: { 'application/json': infer B } } ? B : never;
type ResponsesOf<Id extends OperationId> = operations[Id] extends { responses: infer R } ? R : never;
type JsonStatus<Id extends OperationId> = {
  [S in keyof ResponsesOf<Id>]: JsonContent<ResponsesOf<Id>[S]> extends never ? never : S;
}[keyof ResponsesOf<Id>];

/**
 * Sends a JSON body typed against the contract: a status the operation does not declare, or a body
 * of the wrong shape, is a compile error.
 */
export function sendJson<Id extends OperationId, S extends JsonStatus<Id> & number>(
  res: Response,
  _operationId: Id,
  status: S,
  body: JsonContent<ResponsesOf<Id>[S]>,
): void {
  res.status(status).json(body);
}
