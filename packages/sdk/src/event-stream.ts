/** One dispatched Server-Sent Event. */
export interface ServerSentEvent {
  /** `message` when the server named none. */
  event: string;
  data: string;
  /** The stream's last event id so far (ids persist across events, as in EventSource). */
  id: string | undefined;
}

/**
 * An incremental parser of `text/event-stream` (the WHATWG HTML "event stream interpretation"):
 * feed it decoded text as it arrives, in chunks cut anywhere, and it returns the events each chunk
 * completes. Lines end with CRLF, LF or CR; `:` lines are comments (heartbeats); an event is
 * dispatched at a blank line, and only when it has data. `retry` is read but not kept: the SDK
 * chooses its own reconnection delays.
 */
export class EventStreamParser {
  #buffer = '';
  #started = false;
  /** A CR ended the last chunk: an LF starting the next one belongs to it. */
  #afterCr = false;
  #event = '';
  #data: string[] = [];
  #id: string | undefined;

  get lastEventId(): string | undefined {
    return this.#id;
  }

  push(chunk: string): ServerSentEvent[] {
    let text = chunk;
    if (this.#afterCr && text.startsWith('\n')) text = text.slice(1);
    this.#afterCr = false;
    if (!this.#started && text.length > 0) {
      this.#started = true;
      if (text.startsWith('\uFEFF')) text = text.slice(1);
    }
    this.#buffer += text;
    const events: ServerSentEvent[] = [];
    for (;;) {
      const end = this.#buffer.search(/[\r\n]/);
      if (end < 0) break;
      const line = this.#buffer.slice(0, end);
      let next = end + 1;
      if (this.#buffer[end] === '\r') {
        if (next === this.#buffer.length) this.#afterCr = true;
        else if (this.#buffer[next] === '\n') next += 1;
      }
      this.#buffer = this.#buffer.slice(next);
      const event = this.#line(line);
      if (event) events.push(event);
    }
    return events;
  }

  #line(line: string): ServerSentEvent | undefined {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
    return undefined;
  }

  #dispatch(): ServerSentEvent | undefined {
    const event = this.#event || 'message';
    const data = this.#data;
    this.#event = '';
    this.#data = [];
    if (data.length === 0) return undefined;
    return { event, data: data.join('\n'), id: this.#id };
  }
}
