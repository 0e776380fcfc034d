/**
 * Typed errors thrown by services and middleware. One error handler (problem.ts) turns them, and the
 * validator's and body parser's errors, into RFC 9457 problem+json.
 */

export interface ProblemItem {
  path?: string;
  message: string;
  code?: string;
  index?: number;
  id?: string;
}

export class HttpProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly errors: ProblemItem[] | undefined;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(
    status: number,
    code: string,
    detail: string,
    options: {
      errors?: ProblemItem[];
      headers?: Record<string, string>;
      extensions?: Record<string, unknown>;
    } = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
    this.status = status;
    this.code = code;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }
}

export const Invalid = (detail: string, errors?: ProblemItem[], code = 'validation_failed') =>
  new HttpProblem(400, code, detail, errors ? { errors } : {});
export const Unauthorized = (detail = 'Authentication is required', code = 'unauthorized') =>
  new HttpProblem(401, code, detail, { headers: { 'WWW-Authenticate': 'Bearer' } });
export const Forbidden = (detail = 'Your role does not allow this operation', code = 'forbidden') =>
  new HttpProblem(403, code, detail);
export const NotFound = (detail = 'Not found', code = 'not_found') => new HttpProblem(404, code, detail);
export const Conflict = (detail: string, code = 'conflict', extensions?: Record<string, unknown>) =>
  new HttpProblem(409, code, detail, extensions ? { extensions } : {});
export const PayloadTooLarge = (detail: string) => new HttpProblem(413, 'payload_too_large', detail);
