import type { components } from './generated/schema.ts';

export type Problem = components['schemas']['Problem'];

/** The request never got an HTTP answer (offline, DNS, reset, timeout). */
export class NetworkError extends Error {
  override readonly cause: unknown;
  constructor(message: string, cause: unknown) {
    super(message);
    this.name = 'NetworkError';
    this.cause = cause;
  }
}

/** An HTTP error answer, with the server's problem details. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | undefined;
  constructor(status: number, problem: Problem | undefined) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
  }
}
