import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Unauthorized } from '../../http/errors.ts';
import { ChangeEvents, COALESCE_MS, type EventSink, type StreamCredentials } from './change-events.ts';

/** A sink that keeps what the stream sent, as the client would read it. */
function recordingSink() {
  const sent: string[] = [];
  const closeListeners: (() => void)[] = [];
  let ended = false;
  const sink: EventSink = {
    send: (text) => sent.push(text),
    end: () => {
      ended = true;
      for (const l of closeListeners) l();
    },
    onClose: (l) => closeListeners.push(l),
  };
  return {
    sink,
    sent,
    /** The versions of the `version` events, in order. */
    versions: () =>
      sent
        .filter((t) => t.includes('event: version'))
        .map((t) => Number(/"current_version":(\d+)/.exec(t)![1])),
    ended: () => ended,
    /** The client goes away. */
    disconnect: () => {
      for (const l of closeListeners) l();
    },
  };
}

const goodToken: StreamCredentials = { check: async () => {}, expiresAtMs: undefined };

describe('ChangeEvents', () => {
  let counter: number;
  let events: ChangeEvents;
  beforeEach(() => {
    vi.useFakeTimers();
    counter = 7;
    events = new ChangeEvents({
      readVersion: async () => counter,
      pollMs: 1000,
      heartbeatMs: 5000,
      maxStreams: 2,
    });
  });
  afterEach(() => {
    events.close();
    vi.useRealTimers();
  });

  it('sends the current version at once, then one event for a burst of local writes', async () => {
    const client = recordingSink();
    await events.open(client.sink, goodToken);
    expect(client.versions()).toEqual([7]);
    for (let v = 8; v <= 50; v++) events.advanced(v);
    await vi.advanceTimersByTimeAsync(COALESCE_MS);
    expect(client.versions()).toEqual([7, 50]);
    events.advanced(50); // nothing new
    await vi.advanceTimersByTimeAsync(COALESCE_MS);
    expect(client.versions()).toEqual([7, 50]);
  });

  it('hears of other processes’ writes by reading the counter while streams are open', async () => {
    const client = recordingSink();
    await events.open(client.sink, goodToken);
    counter = 12;
    await vi.advanceTimersByTimeAsync(1000 + COALESCE_MS);
    expect(client.versions()).toEqual([7, 12]);
  });

  it('refuses streams beyond the limit with 503 and Retry-After, and forgets streams whose client left', async () => {
    const a = recordingSink();
    const b = recordingSink();
    await events.open(a.sink, goodToken);
    await events.open(b.sink, goodToken);
    await expect(events.open(recordingSink().sink, goodToken)).rejects.toMatchObject({
      status: 503,
      code: 'too_many_streams',
      headers: { 'Retry-After': expect.any(String) },
    });
    a.disconnect();
    b.disconnect();
    expect(events.size).toBe(0);
    // No stream: no timer is left running (a process without listeners reads nothing).
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends a stream whose token is revoked at the next heartbeat, and one whose token expires then', async () => {
    let revoked = false;
    const revocable = recordingSink();
    await events.open(revocable.sink, {
      check: async () => {
        if (revoked) throw Unauthorized('revoked', 'token_revoked');
      },
      expiresAtMs: undefined,
    });
    const expiring = recordingSink();
    await events.open(expiring.sink, { check: async () => {}, expiresAtMs: Date.now() + 3000 });
    await vi.advanceTimersByTimeAsync(3000);
    expect(expiring.ended()).toBe(true);
    expect(expiring.sent.at(-1)).toContain('"reason":"token_expired"');
    expect(revocable.ended()).toBe(false);
    revoked = true;
    await vi.advanceTimersByTimeAsync(2000);
    expect(revocable.ended()).toBe(true);
    expect(revocable.sent.at(-1)).toContain('"reason":"token_revoked"');
    expect(events.size).toBe(0);
  });

  it('ends every stream on close and refuses new ones', async () => {
    const client = recordingSink();
    await events.open(client.sink, goodToken);
    events.close();
    expect(client.ended()).toBe(true);
    expect(client.sent.at(-1)).toContain('"reason":"shutdown"');
    await expect(events.open(recordingSink().sink, goodToken)).rejects.toMatchObject({ status: 503 });
    expect(vi.getTimerCount()).toBe(0);
  });
});
