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
 * An HTTP proxy in front of a real server that records the requests it forwards: shows what a
 * client sends to a server (which headers, which credentials) while the real server answers.
 * `delayMs` holds chosen requests back before forwarding them (a slow network), so that clients
 * acting at once are sure to overlap.
 */
export async function startRecordingProxy(
  target: string,
  delayMs: (request: RecordedRequest) => number = () => 0,
): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = createServer(async (req, res) => {
    const recorded = { method: req.method!, url: req.url!, headers: req.headers };
    requests.push(recorded);
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
        answer.pipe(res);
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
