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

/**
 * An answer that says nothing about the request itself, only that the server (or a proxy) could
 * not take it now: 408, 429 and 5xx. Asked again later, it may well succeed.
 */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** An HTTP error answer, with the server's problem details. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | undefined;
  /**
   * How long the server asked to be left alone (its `Retry-After`, e.g. on 429 or 503), in ms, when
   * it said: the transport waits on its own only up to `retry.maxDelayMs`, a longer wait is the app's.
   */
  readonly retryAfterMs: number | undefined;
  constructor(status: number, problem: Problem | undefined, retryAfterMs?: number, message?: string) {
    super(problem?.detail ?? message ?? `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
    this.retryAfterMs = retryAfterMs;
  }

  /** The error for an answer: its status, the problem details given, and its `Retry-After`. */
  static of(response: Response, problem: Problem | undefined): ApiError {
    return new ApiError(response.status, problem, retryAfterMs(response), foreignAnswer(response));
  }
}

/**
 * Whether an answer is JSON (`application/json`, `application/problem+json`, any `+json`): a
 * server's answer, not a page from something on the way (a captive portal, a proxy).
 */
export function isJsonAnswer(response: Response): boolean {
  return /^application\/([\w.-]+\+)?json\s*(;|$)/i.test(response.headers.get('content-type') ?? '');
}

/**
 * What to say of an error answer that is not JSON (the server answers every error with a JSON
 * problem): a page from something between the device and the server, which the status alone would
 * pass off as the server's word.
 */
function foreignAnswer(response: Response): string | undefined {
  if (response.ok || isJsonAnswer(response)) return undefined;
  const type = response.headers.get('content-type')?.split(';')[0]?.trim();
  return `HTTP ${response.status} (${type ? `a ${type} answer` : 'an answer'}, not the sync server's: a proxy, a captive portal or a wrong URL?)`;
}

/**
 * The wait a response asks for (Retry-After), in ms: delay-seconds, or an HTTP-date measured against
 * the response's own Date, i.e. on the server's clock (a device's clock may be off by minutes or
 * hours, which would turn "in 2 s" into no wait at all, or into an hour); undefined when absent or
 * unreadable.
 */
export function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000; // Infinity for absurdly many digits: too long
  const at = httpDate(value);
  if (at === undefined) return undefined;
  return Math.max(0, at - (httpDate(response.headers.get('date')) ?? Date.now()));
}

/**
 * An HTTP-date (IMF-fixdate, or RFC 850's and asctime's obsolete forms), as ms since the epoch. Each
 * has a time of day; without one, Date.parse takes nearly any text for a date ("5, 5", two
 * Retry-After headers joined, is a day in 2001, already past: no wait at all).
 */
function httpDate(value: string | null): number | undefined {
  if (!value || !/\d\d:\d\d:\d\d/.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : at;
}

/**
 * A stored value that cannot be read back: not the JSON that was written (a damaged disk, a file
 * edited or cut short by hand; the SDK's own writes are whole or not at all). Thrown by the storage
 * adapters' `get`, naming the key and, for files, the file. A queued record that cannot be read is
 * set aside (a dead letter with code `unreadable`) so that the rest of the queue still goes; the
 * session, the client id and a pull cursor are replaced (a login, a new id, a resync pass); any
 * other value stops what needs it with this error rather than being taken for absent, which would
 * drop what it lists (the queue's order, the batch in flight).
 */
export class CorruptValueError extends Error {
  readonly key: string;
  /** Where the value is kept, when the store has such a thing (a file's path). */
  readonly location: string | undefined;
  override readonly cause: unknown;
  constructor(key: string, cause: unknown, location?: string) {
    super(
      `The stored value of "${key}"${location ? ` (${location})` : ''} cannot be read: ${(cause as Error)?.message ?? cause}`,
    );
    this.name = 'CorruptValueError';
    this.key = key;
    this.location = location;
    this.cause = cause;
  }

  /** Whether `err` says a stored value cannot be read back (a custom adapter may throw JSON.parse's SyntaxError). */
  static is(err: unknown): boolean {
    return err instanceof CorruptValueError || err instanceof SyntaxError;
  }

  /** `text`, read as `parse` reads it; a CorruptValueError for `key` when it is not JSON. */
  static parse(text: string, parse: (text: string) => unknown, key: string, location?: string): unknown {
    try {
      return parse(text);
    } catch (err) {
      throw new CorruptValueError(key, err, location);
    }
  }
}
