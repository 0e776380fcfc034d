import { parseJson } from '@synk/json';
import { ApiError, isTransientStatus, NetworkError, retryAfterMs } from './errors.ts';

export interface RetryOptions {
  /** Retries after the first attempt (default 4). */
  retries: number;
  /** First backoff delay; doubles each retry, with full jitter (default 300 ms). */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 4, baseDelayMs: 300, maxDelayMs: 15_000 };

export interface TransportOptions {
  fetch: (request: Request) => Promise<Response>;
  retry: RetryOptions;
  /**
   * Per attempt (default 30 s): the response headers must arrive within it (for an upload, see
   * RequestSource, once its body has been handed over: while that is sent, the attempt fails only
   * when none of it is taken for this long), then a body read whole as text or JSON within it of
   * the call that reads it; a body read as a stream or as bytes (a download of any size) fails when
   * a read waits this long for data. A body nobody reads, or stops reading, is released after ten
   * times as long.
   */
  timeoutMs: number;
  accessToken(): Promise<string | undefined>;
  /** Gets a new access token after a 401 with `staleToken`; `undefined` when that is not possible. Single-flight. */
  refresh(staleToken: string | undefined): Promise<string | undefined>;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A request, or a function that builds it. The function is called again for each attempt (a retry,
 * or the resend after a token refresh), so a streamed body is read from its source (a file) each
 * time instead of being held in memory in case it is needed again; use one for large streamed
 * uploads. A Request's body is kept in memory until its last attempt, so that a retry can send it
 * again whole.
 *
 * Where request bodies stream (Node), an upload (a body given as a stream, or one whose request
 * states its `Content-Length`), from a function or in a Request, may take any time to send: the
 * attempt's timeout only ends it when the network takes none of it for `timeoutMs`, and the wait
 * for the response starts once it has all been handed over. A stream with byte reading support (a
 * Blob's `stream()`, a FileHandle's `readableWebStream()`) is taken for a body fetch knows the length
 * of (see isUpload): give its request a `Content-Length`, or its upload is timed as a whole.
 */
export type RequestSource = Request | (() => Request);

/** POSTs that only read, so they are as safe to repeat as a GET. */
const READ_ONLY_POSTS = ['/sync/pull', '/attachments/manifest'];
const NO_AUTH = ['/auth/login', '/auth/refresh'];

/**
 * May this request be sent again without risk? Safe methods, reads, and writes that carry their
 * own idempotency: a push's `transmission_id`, an `Idempotency-Key`, a PUT of an attachment (the
 * same id with the same bytes is a no-op on the server).
 */
export function isRetryable(request: Request): boolean {
  const path = new URL(request.url).pathname;
  if (['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'].includes(request.method)) return true;
  if (request.headers.has('idempotency-key')) return true;
  return (
    request.method === 'POST' &&
    (READ_ONLY_POSTS.some((p) => path.endsWith(p)) || path.endsWith('/sync/push'))
  );
}

/**
 * Responses read their JSON with `parseJson`: V8's own parser can decode an escaped object key
 * wrongly (nodejs/node#63785), and pulled records may use any text as a key in `data`.
 */
function withSafeJson(response: Response): Response {
  response.json = async () => parseJson(await response.text());
  return response;
}

/**
 * How many times `timeoutMs` a body nobody reads is kept before its connection is released. Long, as
 * an app may read a response well after getting it (downloads started together, saved one after
 * the other), but not endless: a dropped response whose server stalls would hold its connection,
 * and keep a Node process alive, for ever.
 */
const UNREAD_BODY_TIMEOUTS = 10;

/** The Requests being fetched, or whose response body is being read (see fetchHolding, guardBody). */
const held = new Set<Request>();

/** What a guarded response body belongs to. */
export interface Exchange {
  /** The request answered: its signal (the caller's cancellation) ends the reading of the body too. */
  request?: Request;
  /** Called once the body is over: read to its end, failed, cancelled or released. */
  ended?: () => void;
}

/**
 * Puts a timeout on reading the response body too: a server that sends the headers and then
 * stalls would otherwise hang a read forever. A body read whole as text or JSON (the API's answers,
 * a page at most) must be in within `ms` of the call that reads it; one read as a stream or as bytes
 * (a download, which may take any time) fails only when a read waits `ms` for data, so a consumer
 * busy between reads (writing to a slow disk) is not counted. A body nobody reads (or stops reading)
 * is released after `UNREAD_BODY_TIMEOUTS` × `ms`.
 *
 * The request's signal is followed here, the request held until the body is over: Node's fetch
 * carries it to the body only through the Request it fetched, and after a garbage collection that
 * has dropped it the caller's cancellation would no longer end a read (see fetchHolding).
 *
 * The answer is a Response around the guarded body, so that everything the platform's Response does
 * with its body (`clone()`, which tees it; `bodyUsed`) works on the guarded one; the fetched
 * response's url, redirected flag and type are carried over.
 */
export function guardBody(response: Response, ms: number, label: string, exchange: Exchange = {}): Response {
  const source = response.body;
  if (!source) {
    exchange.ended?.();
    return withSafeJson(response);
  }
  // Locked at once: Node's fetch cancels the body of a response that is garbage-collected unless
  // it is locked, and only the guarded Response is kept from here on.
  const reader = source.getReader();
  let whole = false;
  let over = false;
  let output: ReadableStreamDefaultController<Uint8Array> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const { request, ended } = exchange;
  const stop = () => clearTimeout(timer);
  const end = () => {
    stop();
    if (over) return;
    over = true;
    if (request) {
      request.signal.removeEventListener('abort', cancelled);
      held.delete(request);
    }
    ended?.();
  };
  /** Fails the body with `error`, and closes the connection. */
  const fail = (error: unknown, reason: unknown) => {
    end();
    output?.error(error);
    reader.cancel(reason).catch(() => undefined);
  };
  /** The request's signal aborted: the caller cancelled it. */
  const cancelled = () => fail(request?.signal.reason, request?.signal.reason);
  const expireIn = (after: number, message: string) => {
    stop();
    timer = setTimeout(() => {
      const reason = new DOMException(message, 'TimeoutError');
      fail(new NetworkError(`${label}: ${message}`, reason), reason);
    }, after);
    // As AbortSignal.timeout's: the timer alone must not keep a Node process alive.
    (timer as { unref?: () => void }).unref?.();
  };
  const unread = () =>
    expireIn(ms * UNREAD_BODY_TIMEOUTS, `the response body was not read for ${ms * UNREAD_BODY_TIMEOUTS} ms`);
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        output = controller;
        unread();
      },
      async pull(controller) {
        if (!whole) expireIn(ms, `no response data for ${ms} ms`);
        try {
          const next = await reader.read();
          if (next.done) {
            end();
            controller.close();
          } else {
            controller.enqueue(next.value);
            if (!whole) unread(); // until the consumer asks for more
          }
        } catch (err) {
          end();
          controller.error(err); // a no-op once the timeout has failed the body
        }
      },
      cancel(reason) {
        end();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 }, // read only when the consumer asks, so its pauses do not count as waiting
  );
  if (request) {
    held.add(request);
    request.signal.addEventListener('abort', cancelled, { once: true });
    if (request.signal.aborted) cancelled();
  }
  const readWhole = () => {
    if (whole) return;
    whole = true;
    expireIn(ms, `the response was not complete within ${ms} ms`);
  };
  const { url, redirected, type } = response;
  const guard = (guarded: Response): Response => {
    Object.defineProperties(guarded, {
      url: { value: url },
      redirected: { value: redirected },
      type: { value: type },
    });
    guarded.text = () => {
      readWhole();
      return Response.prototype.text.call(guarded);
    };
    guarded.formData = () => {
      readWhole();
      return Response.prototype.formData.call(guarded);
    };
    // A clone tees the guarded body: both branches are read through the same timeouts.
    guarded.clone = () => guard(Response.prototype.clone.call(guarded));
    return withSafeJson(guarded);
  };
  return guard(
    new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    }),
  );
}

/**
 * `fetch(request)`, holding `request` until the fetch settles. Node's fetch carries an abort from a
 * Request's signal to the fetch through a controller that only the Request object holds, so once
 * nothing else references the Request, a garbage collection silently disconnects them: the timeout
 * or the caller's cancellation no longer ends the fetch (nodejs/undici#4068, nodejs/node#55428).
 */
export async function fetchHolding(
  fetch: (request: Request) => Promise<Response>,
  request: Request,
): Promise<Response> {
  held.add(request);
  try {
    return await fetch(request);
  } finally {
    held.delete(request);
  }
}

/**
 * Streamed request bodies can be sent by Node's fetch (over HTTP/1.1); browsers send them only over
 * HTTP/2, and React Native not at all.
 */
export const streamsRequestBodies =
  typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

/** A request body as fetch sends it (see watchSending). */
interface WatchedBody {
  stream: ReadableStream<Uint8Array>;
  /** Ends the sending, its source cancelled, unless all of it has been sent. */
  release(): void;
}

/**
 * `source` as fetch sends it: `taking` is called when it starts and whenever fetch asks for more
 * (the network took what it had), `sent` once fetch has had all of it.
 *
 * `release` is for the end of the attempt: Node's fetch does not end the sending of a body whose
 * request is over before all of it was sent. After a refused connection it leaves the body unread,
 * and after an answer that came first (a 413, a 401) it may stop reading it without cancelling it,
 * so its source (a file opened for it) stays open until the process exits; after a dropped answer
 * or a broken connection it reads the rest to the end only to throw it away.
 */
function watchSending(source: ReadableStream<Uint8Array>, taking: () => void, sent: () => void): WatchedBody {
  const reader = source.getReader();
  let over = false;
  let output: ReadableStreamDefaultController<Uint8Array> | undefined;
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        output = controller;
        taking();
      },
      async pull(controller) {
        taking();
        const next = await reader.read();
        if (over) return; // released meanwhile
        if (next.done) {
          over = true;
          sent();
          controller.close();
        } else controller.enqueue(next.value);
      },
      cancel(reason) {
        over = true;
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 }, // pulled only as fetch sends, so that a stalled network stops the pulls
  );
  return {
    stream,
    release() {
      if (over) return;
      over = true;
      const reason = new DOMException('the request is over', 'AbortError');
      output?.error(reason); // fetch, if still reading it, stops
      reader.cancel(reason).catch(() => undefined);
    },
  };
}

/**
 * Only an upload goes through the upload watcher (see RequestSource), where request bodies stream:
 * a body given as a stream, which fetch sends chunked anyway, or one whose request states its
 * Content-Length. Any other body (a string, bytes, a Blob, FormData) wrapped in a stream would be
 * sent chunked, without the length fetch works out for it. Fetch makes each of those a byte stream
 * (one with byte reading support), which a stream given as the body seldom is; one that is (a
 * Blob's `stream()`) passes for one of them unless its request states its length.
 */
function isUpload(request: Request): boolean {
  if (!streamsRequestBodies || request.body === null) return false;
  return request.headers.has('content-length') || !isByteStream(request.body);
}

/** Taking a BYOB reader and letting it go reads nothing: the body can still be sent or cloned. */
function isByteStream(stream: ReadableStream): boolean {
  try {
    stream.getReader({ mode: 'byob' }).releaseLock();
    return true;
  } catch {
    return false; // a stream without byte reading support refuses the reader
  }
}

/** An answer standing for `error`'s: its status, problem details and wait. */
function unanswered(error: ApiError): Response {
  const headers = new Headers({ 'content-type': 'application/problem+json' });
  if (error.retryAfterMs !== undefined && Number.isFinite(error.retryAfterMs))
    headers.set('retry-after', String(Math.ceil(error.retryAfterMs / 1000)));
  return new Response(JSON.stringify(error.problem ?? { status: error.status }), {
    status: error.status,
    headers,
  });
}

/**
 * The fetch the typed client runs on: adds the bearer token, refreshes it once on a 401 (all
 * concurrent 401s share one refresh), and retries with exponential backoff and jitter on network
 * errors, 408, 429 (honouring Retry-After) and 5xx, only for requests that are safe to repeat.
 */
export function createTransport(options: TransportOptions): (request: RequestSource) => Promise<Response> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const backoff = (attempt: number) =>
    Math.random() * Math.min(options.retry.maxDelayMs, options.retry.baseDelayMs * 2 ** attempt);
  /** Waits before a retry; the request's own signal ends the wait at once. */
  const pause = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      sleep(ms).then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, reject);
    });
  /** A response that will not be returned: release its connection. */
  const discard = (response: Response) => response.body?.cancel().catch(() => undefined);

  /**
   * One attempt: `request` fetched with the attempt's timeout and `signal` (the caller's). The
   * response headers come only after the whole request body, so while an `upload` is being sent
   * (which may take any time) the attempt fails only when no data of it is taken for `timeoutMs`;
   * the wait for the headers starts once it has all been handed over. `guardBody` then puts one on
   * the response body. `release` ends the sending of an upload not sent whole once the attempt is
   * over (see watchSending); a failed attempt has released it already.
   */
  async function send(
    request: Request,
    upload: boolean,
    signal: AbortSignal,
  ): Promise<{ response: Response; release: () => void }> {
    const timeout = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    const expireIn = (message: string) => {
      clearTimeout(timer);
      if (settled) return; // answered: a server may answer before it has read the whole body
      timer = setTimeout(() => timeout.abort(new DOMException(message, 'TimeoutError')), options.timeoutMs);
    };
    const awaitResponse = () => expireIn(`no response within ${options.timeoutMs} ms`);
    const body =
      upload && request.body
        ? watchSending(
            request.body,
            () => expireIn(`no request data was taken for ${options.timeoutMs} ms`),
            awaitResponse,
          )
        : undefined;
    if (!body) awaitResponse();
    const init: RequestInit = { signal: AbortSignal.any([signal, timeout.signal]) };
    try {
      const response = await fetchHolding(
        options.fetch,
        new Request(request, body ? ({ ...init, body: body.stream, duplex: 'half' } as RequestInit) : init),
      );
      return { response, release: body ? body.release : () => {} };
    } catch (err) {
      body?.release();
      throw err;
    } finally {
      settled = true;
      clearTimeout(timer);
    }
  }

  return async (source: RequestSource) => {
    // A Request is cloned for each attempt; a clone tees the body, which keeps every byte sent in
    // memory until the attempt is over: fine for JSON, not for a file. A function builds the
    // request afresh instead, reading the body from its source again.
    const original = typeof source === 'function' ? source() : source;
    let sent = false;
    const nextRequest = () => {
      if (typeof source !== 'function') return original.clone();
      if (sent) return source();
      sent = true;
      return original;
    };
    const retryable = isRetryable(original);
    const upload = isUpload(original); // before a clone tees its body
    const authenticated = !NO_AUTH.some((p) => new URL(original.url).pathname.endsWith(p));
    const label = `${original.method} ${original.url}`;
    let token = authenticated ? await options.accessToken() : undefined;
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const request = nextRequest();
      if (token && !request.headers.has('authorization'))
        request.headers.set('authorization', `Bearer ${token}`);
      let response: Response;
      let release: () => void;
      try {
        ({ response, release } = await send(request, upload, original.signal));
      } catch (err) {
        if (original.signal.aborted) throw err;
        if (retryable && attempt < options.retry.retries) {
          await pause(backoff(attempt), original.signal);
          continue;
        }
        throw new NetworkError(`${label} failed: ${(err as Error).message}`, err);
      }
      // The attempt is over once its answer is: at once for one not returned, and for the one
      // returned when its body is.
      const answer = () =>
        guardBody(response, options.timeoutMs, label, { request: original, ended: release });
      const drop = () => {
        release();
        return discard(response);
      };
      if (response.status === 401 && authenticated && !refreshed) {
        refreshed = true;
        let fresh: string | undefined;
        try {
          fresh = await options.refresh(token);
        } catch (err) {
          await drop();
          if (!(err instanceof ApiError)) throw err;
          // The server could not answer the refresh (a 503 while it restarts): retried as that
          // answer would be, then returned in place of the 401, which would pass a moment's outage
          // off as the end of the session.
          const asked = err.retryAfterMs;
          const waitable = asked === undefined || asked <= options.retry.maxDelayMs;
          if (retryable && attempt < options.retry.retries && waitable) {
            await pause(asked ?? backoff(attempt), original.signal);
            refreshed = false;
            continue;
          }
          return guardBody(unanswered(err), options.timeoutMs, label, { request: original });
        }
        if (fresh) {
          await drop();
          token = fresh;
          attempt -= 1; // a refresh is not a retry
          continue;
        }
        return answer();
      }
      if (isTransientStatus(response.status) && retryable && attempt < options.retry.retries) {
        const asked = retryAfterMs(response);
        // A server asking for a longer wait than the configured maximum gets its answer returned.
        if (asked === undefined || asked <= options.retry.maxDelayMs) {
          await drop();
          await pause(asked ?? backoff(attempt), original.signal);
          continue;
        }
      }
      return answer();
    }
  };
}
