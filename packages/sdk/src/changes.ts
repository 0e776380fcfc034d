import { ApiError, isTransientStatus, type Problem, retryAfterMs } from './errors.ts';
import { EventStreamParser } from './event-stream.ts';
import type { RequestSource } from './transport.ts';

/** The server's change counter moved: pull up to (at least) `current_version`. */
export interface Change {
  current_version: number;
}

export interface ChangesOptions {
  /** Ends the stream; the loop then finishes without an error. */
  signal?: AbortSignal;
  /** Yield only versions above this one (e.g. the app's pull cursor); by default the first event is yielded whatever it is. */
  since?: number;
  /**
   * Waits before reconnecting after a dropped or refused stream: exponential from `baseDelayMs`
   * (default 1 s) up to `maxDelayMs` (default 30 s), with full jitter, so that devices a server
   * shutdown dropped together do not all come back at once. Back to the base once an event arrives.
   */
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number };
}

interface ChangesDeps {
  baseUrl: string;
  /** The client's authenticated, retrying transport (bearer token, single-flight refresh on 401). */
  fetch: (request: RequestSource) => Promise<Response>;
}

/** Waits `ms`, or less when `signal` aborts (then it resolves too: the caller checks the signal). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Problem details of a refused stream, if its body has them. */
async function problemOf(response: Response): Promise<Problem | undefined> {
  try {
    return (await response.json()) as Problem;
  } catch {
    return undefined;
  }
}

/**
 * `GET /sync/events` as an async iterator: yields `{ current_version }` each time the server's
 * change counter grows, so an app pulls when there is something to pull instead of on a timer.
 *
 * Built on fetch streaming (EventSource cannot send the Authorization header), through the
 * client's transport: an expired token is refreshed on the 401 (the same single-flight refresh as
 * every request). A stream that drops, that the server ends (shutdown, token expiry) or that goes
 * silent for the client's `timeoutMs` (the server's heartbeat is shorter) is reconnected with
 * backoff and jitter, sending `Last-Event-ID`. Events that arrive together are yielded as one, the
 * latest. It ends without an error when `signal` aborts (or the loop breaks), and throws an
 * ApiError when the server refuses the stream for good (a 401 the refresh could not cure, a 4xx).
 */
export async function* changeStream(deps: ChangesDeps, options: ChangesOptions = {}): AsyncGenerator<Change> {
  const base = options.reconnect?.baseDelayMs ?? 1000;
  const max = options.reconnect?.maxDelayMs ?? 30_000;
  const backoff = (failures: number) => Math.random() * Math.min(max, base * 2 ** failures);
  // Ends the request when the caller's signal aborts or the loop is left early (see finally).
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const url = `${deps.baseUrl.replace(/\/+$/, '')}/sync/events`;
  let last = options.since;
  let lastEventId: string | undefined;
  let failures = 0;
  try {
    while (!stop.signal.aborted) {
      let wait: number | undefined;
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
        const response = await deps.fetch(new Request(url, { headers, signal: stop.signal }));
        if (!response.ok) {
          if (!isTransientStatus(response.status)) throw ApiError.of(response, await problemOf(response));
          wait = retryAfterMs(response);
          await response.body?.cancel().catch(() => undefined);
        } else if (response.body) {
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          const parser = new EventStreamParser();
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              let newest: number | undefined;
              for (const event of parser.push(decoder.decode(value, { stream: true }))) {
                if (event.event !== 'version') continue; // `end` is followed by the end of the stream
                const version = (JSON.parse(event.data) as Change).current_version;
                lastEventId = event.id;
                failures = 0;
                if (Number.isSafeInteger(version) && (last === undefined || version > last))
                  newest = Math.max(newest ?? version, version);
              }
              if (newest !== undefined) {
                last = newest;
                yield { current_version: newest };
              }
            }
          } finally {
            reader.cancel().catch(() => undefined);
          }
        }
      } catch (err) {
        if (stop.signal.aborted) return;
        if (err instanceof ApiError) throw err;
        // A dropped connection, a silent stream, a network failure the transport's retries did not
        // cure: reconnect below.
      }
      await pause(wait ?? backoff(failures), stop.signal);
      failures += 1;
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    stop.abort();
  }
}
