import type { AppContext } from '../../app-context.ts';
import { bearerToken, principalOf } from '../../http/authenticate.ts';
import type { Handler } from '../../http/routes.ts';

/**
 * Unsent event text a stream may hold for a client that stopped reading (events are ~60 bytes, so
 * this is hundreds of them) before its connection is dropped rather than buffered without end.
 */
const MAX_UNREAD_BYTES = 64 * 1024;

/** `GET /sync/events`: the response as an event sink for ChangeEvents (change-events.ts). */
export function syncEventsHandler(ctx: AppContext): Handler {
  const { auth, changes } = ctx.services;
  return async (req, res) => {
    const principal = principalOf(res);
    const token = bearerToken(req.header('authorization'))!; // authenticate has checked it
    if (req.method === 'HEAD') {
      res.status(200).type('text/event-stream').end();
      return;
    }
    let started = false;
    await changes.open(
      {
        send: (text) => {
          // Headers go with the first event: a refused stream (503) is still problem+json.
          if (!started) {
            started = true;
            res.status(200);
            res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
            // Proxies must neither cache nor buffer nor compress the stream (nginx: X-Accel-Buffering).
            res.setHeader('Cache-Control', 'no-store, no-transform');
            res.setHeader('X-Accel-Buffering', 'no');
          }
          res.write(text);
          if (res.writableLength > MAX_UNREAD_BYTES) res.destroy();
        },
        // The connection is not kept for another request: a stream ended by a shutdown must not
        // leave it idle in the client's pool, holding the server open until its keep-alive ends.
        end: () => res.end(() => req.socket.end()),
        onClose: (listener) => {
          if (res.destroyed || res.writableEnded) listener();
          else res.once('close', listener);
        },
      },
      {
        check: async () => {
          await auth.authenticate(token);
        },
        expiresAtMs: principal.expiresAt === undefined ? undefined : principal.expiresAt * 1000,
      },
    );
  };
}
