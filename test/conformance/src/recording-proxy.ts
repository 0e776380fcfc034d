import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface RecordingProxy {
  /** A URL other than the target's: to a client it is another server. */
  url: string;
  /** Every request that came in, in order. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * What a proxy does with a request instead of forwarding it as it is: answer it itself with an
 * HTML error page of `status` (a gateway that is not the server), or forward it and `cut` the
 * connection, or `stall` the answer, halfway through the body (after its first chunk when the
 * length is not known, as for an event stream).
 */
export type Interception = undefined | 'cut' | 'stall' | { status: number };

export interface ProxyOptions {
  /** Holds chosen requests back before forwarding them (a slow network). */
  delayMs?: (request: RecordedRequest) => number;
  intercept?: (request: RecordedRequest) => Interception;
}

/**
 * An HTTP proxy in front of a real server that records the requests it forwards: shows what a
 * client sends to a server (which headers, which credentials) while the real server answers.
 * `delayMs` holds chosen requests back before forwarding them (a slow network), so that clients
 * acting at once are sure to overlap; `intercept` answers, cuts or stalls chosen ones.
 */
export async function startRecordingProxy(
  target: string,
  options: ProxyOptions | ((request: RecordedRequest) => number) = {},
): Promise<RecordingProxy> {
  const { delayMs = () => 0, intercept = () => undefined } =
    typeof options === 'function' ? { delayMs: options } : options;
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = createServer(async (req, res) => {
    const recorded = { method: req.method!, url: req.url!, headers: req.headers };
    requests.push(recorded);
    const how = intercept(recorded);
    if (typeof how === 'object') {
      req.resume();
      res
        .writeHead(how.status, { 'content-type': 'text/html' })
        .end(`<html><body><h1>${how.status} Bad Gateway</h1></body></html>`);
      return;
    }
    const delay = delayMs(recorded);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        if (!how) {
          answer.pipe(res);
          return;
        }
        const half = Number(answer.headers['content-length']) / 2;
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= half) return;
          sent += chunk.length;
          if (sent < half) {
            res.write(chunk);
            return;
          }
          // Cut once the chunk is out: destroyed at once, the socket could drop it unsent.
          if (how === 'cut') res.write(chunk, () => res.socket?.destroy());
          else {
            res.write(chunk);
            answer.pause();
          }
        });
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
