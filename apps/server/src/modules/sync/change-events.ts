import { HttpProblem } from '../../http/errors.ts';

/**
 * The "changes available" poke of `GET /sync/events` (spec §4.4): devices hold a Server-Sent
 * Events stream and pull when the global change counter advances, instead of polling on a timer.
 *
 * One `ChangeEvents` per process. It learns of new versions two ways: this process's own writes
 * announce theirs at once (`advanced`), and while any stream is open it reads the counter every
 * `pollMs`, which is how a write committed by another server process sharing the database reaches
 * the streams held here. Announcements are coalesced: a burst of pushes becomes one event per
 * `COALESCE_MS` at most, carrying the latest version (a device pulls everything up to it anyway).
 */

/** The shortest time between two events of a stream: a burst of pushes gives one or a few events. */
export const COALESCE_MS = 250;

/** How long a client refused for want of a free stream is asked to wait. */
const FULL_RETRY_AFTER_SECONDS = 5;

/** What a write that consumed versions tells once it has committed (ChangeEvents, in the server). */
export interface ChangeSignal {
  advanced(version: number): void;
}

/** Why the server ended a stream; sent to the client in a last `end` event before the stream closes. */
export type EndReason = 'token_expired' | 'token_revoked' | 'shutdown' | 'unavailable';

/** Where a stream's text goes (the HTTP response, adapted by the handler). */
export interface EventSink {
  send(text: string): void;
  /** Ends the response (and with it the stream). */
  end(): void;
  /** Calls `listener` once the client has gone away (or the response has ended). */
  onClose(listener: () => void): void;
}

/** The stream's credentials, checked again at every heartbeat. */
export interface StreamCredentials {
  /** Resolves while the access token is still good; rejects with the 401 problem otherwise. */
  check(): Promise<void>;
  /** When the access token expires (unix ms), if known: the stream ends then at the latest. */
  expiresAtMs: number | undefined;
}

export interface ChangeEventsOptions {
  /** The global change counter as committed (a cheap read). */
  readVersion(): Promise<number>;
  pollMs: number;
  heartbeatMs: number;
  maxStreams: number;
  clock?: () => Date;
  /** Hears of failed counter reads (once per outage) and failed credential checks. */
  onError?: (err: unknown, what: string) => void;
}

/** One SSE event of the stream: the counter's value, also its id (what `Last-Event-ID` sends back). */
export function versionEvent(version: number): string {
  return `id: ${version}\nevent: version\ndata: {"current_version":${version}}\n\n`;
}

function endEvent(reason: EndReason): string {
  return `event: end\ndata: {"reason":"${reason}"}\n\n`;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** One open stream. */
class ChangeStream {
  readonly #sink: EventSink;
  readonly #credentials: StreamCredentials;
  readonly #forget: (stream: ChangeStream) => void;
  /** The last version sent; `undefined` until the first event is out (nothing is sent before it). */
  #sent: number | undefined;
  #expiry: NodeJS.Timeout | undefined;
  #over = false;
  #checking = false;

  constructor(sink: EventSink, credentials: StreamCredentials, forget: (stream: ChangeStream) => void) {
    this.#sink = sink;
    this.#credentials = credentials;
    this.#forget = forget;
  }

  get over(): boolean {
    return this.#over;
  }

  start(version: number, nowMs: number): void {
    if (this.#over) return;
    this.#sent = version;
    this.#sink.send(versionEvent(version));
    const { expiresAtMs } = this.#credentials;
    if (expiresAtMs !== undefined) {
      // A token that expires in more than ~24 days gets re-armed by the heartbeats' checks anyway.
      this.#expiry = setTimeout(
        () => this.end('token_expired'),
        Math.min(Math.max(0, expiresAtMs - nowMs), MAX_TIMER_MS),
      );
      this.#expiry.unref();
    }
  }

  changed(version: number): void {
    if (this.#over || this.#sent === undefined || version <= this.#sent) return;
    this.#sent = version;
    this.#sink.send(versionEvent(version));
  }

  /** The token is checked again (revocation, expiry); a comment keeps proxies from closing an idle stream. */
  async heartbeat(onError: ChangeEventsOptions['onError']): Promise<void> {
    if (this.#over || this.#checking) return;
    this.#checking = true;
    try {
      await this.#credentials.check();
    } catch (err) {
      if (err instanceof HttpProblem && err.status === 401) {
        this.end(err.code === 'token_expired' ? 'token_expired' : 'token_revoked');
      } else {
        // Revocation cannot be checked (the database is down): fail closed; the client reconnects.
        onError?.(err, 'could not check an event stream’s token; ending the stream');
        this.end('unavailable');
      }
      return;
    } finally {
      this.#checking = false;
    }
    if (!this.#over) this.#sink.send(': heartbeat\n\n');
  }

  /** The server ends the stream, telling the client why. */
  end(reason: EndReason): void {
    if (this.#over) return;
    this.#sink.send(endEvent(reason));
    this.#release();
    this.#sink.end();
  }

  /** The client went away. */
  closed(): void {
    this.#release();
  }

  #release(): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#expiry);
    this.#forget(this);
  }
}

export class ChangeEvents implements ChangeSignal {
  readonly #options: ChangeEventsOptions;
  readonly #streams = new Set<ChangeStream>();
  /** The highest version known to be committed. */
  #latest = 0;
  #publishTimer: NodeJS.Timeout | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #polling = false;
  #readFailing = false;
  #closed = false;

  constructor(options: ChangeEventsOptions) {
    this.#options = options;
  }

  /** Open streams in this process. */
  get size(): number {
    return this.#streams.size;
  }

  /** A write of this process committed `version`: every stream hears of it within COALESCE_MS. */
  advanced(version: number): void {
    if (version <= this.#latest) return;
    this.#latest = version;
    if (this.#streams.size === 0 || this.#publishTimer) return;
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      for (const stream of this.#streams) stream.changed(this.#latest);
    }, COALESCE_MS);
    this.#publishTimer.unref();
  }

  /**
   * Opens a stream on `sink`: its first event, the current version, is sent at once. Refused (503)
   * when `maxStreams` are open or the server is shutting down. The stream is forgotten, with its
   * timer, as soon as the sink closes.
   */
  async open(sink: EventSink, credentials: StreamCredentials): Promise<void> {
    if (this.#closed) {
      throw new HttpProblem(503, 'service_unavailable', 'The server is shutting down; reconnect shortly', {
        headers: { 'Retry-After': '1' },
      });
    }
    if (this.#streams.size >= this.#options.maxStreams) {
      throw new HttpProblem(
        503,
        'too_many_streams',
        `This server process already holds ${this.#options.maxStreams} event streams; try again later or poll /sync/pull`,
        { headers: { 'Retry-After': String(FULL_RETRY_AFTER_SECONDS) } },
      );
    }
    const stream = new ChangeStream(sink, credentials, (s) => this.#forget(s));
    // Counted before the read below, so that concurrent opens cannot pass the limit together.
    this.#streams.add(stream);
    sink.onClose(() => stream.closed());
    this.#startTimers();
    let version: number;
    try {
      version = await this.#options.readVersion();
    } catch (err) {
      stream.closed();
      throw err;
    }
    this.advanced(version);
    // Whatever was published while the counter was read is in #latest: nothing falls in between.
    stream.start(this.#latest, this.#now());
  }

  /** Ends every stream and refuses new ones (graceful shutdown: the server can stop at once). */
  close(): void {
    this.#closed = true;
    for (const stream of [...this.#streams]) stream.end('shutdown');
    this.#stopTimers();
  }

  #now(): number {
    return (this.#options.clock?.() ?? new Date()).getTime();
  }

  #forget(stream: ChangeStream): void {
    this.#streams.delete(stream);
    if (this.#streams.size === 0) this.#stopTimers();
  }

  /** Timers run only while streams are open: an idle process reads nothing. */
  #startTimers(): void {
    if (this.#pollTimer) return;
    this.#pollTimer = setInterval(() => this.#poll(), this.#options.pollMs);
    this.#pollTimer.unref();
    this.#heartbeatTimer = setInterval(() => {
      for (const stream of this.#streams) void stream.heartbeat(this.#options.onError);
    }, this.#options.heartbeatMs);
    this.#heartbeatTimer.unref();
  }

  #stopTimers(): void {
    clearInterval(this.#pollTimer);
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#publishTimer);
    this.#pollTimer = undefined;
    this.#heartbeatTimer = undefined;
    this.#publishTimer = undefined;
  }

  /** One read at a time: a slow database must not pile reads up. */
  #poll(): void {
    if (this.#polling) return;
    this.#polling = true;
    this.#options
      .readVersion()
      .then(
        (version) => {
          this.#readFailing = false;
          this.advanced(version);
        },
        (err: unknown) => {
          if (!this.#readFailing)
            this.#options.onError?.(err, 'could not read the change counter for event streams');
          this.#readFailing = true;
        },
      )
      .finally(() => {
        this.#polling = false;
      });
  }
}
