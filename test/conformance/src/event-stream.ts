import type { Target } from './harness.ts';
import { send } from './http.ts';

/** One Server-Sent Event as the wire has it (`retry` ignored). */
export interface StreamEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/**
 * Reads a `text/event-stream` response event by event, written here from the format (not the
 * SDK's parser), so the raw-HTTP cases check the server's bytes on their own. Comment lines
 * (heartbeats) are counted.
 */
export class EventReader {
  readonly response: Response;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  readonly #decoder = new TextDecoder();
  #buffer = '';
  #pending: StreamEvent[] = [];
  #ended = false;
  comments = 0;

  constructor(response: Response) {
    this.response = response;
  }

  /** Taken on the first read: until then the body can still be read whole (a refusal's problem). */
  get #stream(): ReadableStreamDefaultReader<Uint8Array> {
    this.#reader ??= this.response.body!.getReader();
    return this.#reader;
  }

  /** The next event, or `undefined` once the stream has ended. Fails after `timeoutMs` without one. */
  async next(timeoutMs = 15_000): Promise<StreamEvent | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#pending.length === 0) {
      if (this.#ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event within ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), left);
      });
      try {
        const { done, value } = await Promise.race([this.#stream.read(), timeout]);
        if (done) this.#ended = true;
        else this.#parse(this.#decoder.decode(value, { stream: true }));
      } catch (err) {
        if (err instanceof Error && err.message.startsWith('no event')) throw err;
        this.#ended = true; // the connection was closed under the reader
      } finally {
        clearTimeout(timer);
      }
    }
    return this.#pending.shift();
  }

  /** Reads until a `version` event with a version ≥ `version`; returns the versions read on the way. */
  async untilVersion(version: number, timeoutMs = 15_000): Promise<number[]> {
    const seen: number[] = [];
    for (;;) {
      const event = await this.next(timeoutMs);
      if (!event) throw new Error(`the stream ended before version ${version} (saw ${seen.join(', ')})`);
      if (event.event !== 'version') continue;
      const current = (JSON.parse(event.data) as { current_version: number }).current_version;
      seen.push(current);
      if (current >= version) return seen;
    }
  }

  /** Reads to the end of the stream; returns the events read on the way. */
  async toEnd(timeoutMs = 15_000): Promise<StreamEvent[]> {
    const events: StreamEvent[] = [];
    for (let event = await this.next(timeoutMs); event; event = await this.next(timeoutMs))
      events.push(event);
    return events;
  }

  async close(): Promise<void> {
    if (this.#reader) await this.#reader.cancel().catch(() => undefined);
    else await this.response.body?.cancel().catch(() => undefined);
  }

  #parse(text: string): void {
    this.#buffer += text.replace(/\r\n?/g, '\n');
    for (let end = this.#buffer.indexOf('\n\n'); end >= 0; end = this.#buffer.indexOf('\n\n')) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const event: StreamEvent = { event: 'message', id: undefined, data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments += 1;
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event.event = value;
        else if (field === 'id') event.id = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length === 0) continue;
      event.data = data.join('\n');
      this.#pending.push(event);
    }
  }
}

/** `GET /sync/events` with `token` (raw HTTP, or through the SDK's typed client: see VIA_SDK). */
export async function openEvents(
  target: Target,
  token: string | undefined,
  headers: Record<string, string> = {},
): Promise<EventReader> {
  const response = await send(target, '/sync/events', {
    headers: {
      accept: 'text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
  });
  return new EventReader(response);
}

/** The `version` event's counter. */
export const versionOf = (event: StreamEvent | undefined) =>
  (JSON.parse(event!.data) as { current_version: number }).current_version;
