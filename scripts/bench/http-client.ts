import http from 'node:http';

/**
 * A lean keep-alive JSON client on node:http, for benchmarks: fetch (undici) spends more time
 * decoding large bodies than the server spends producing them, which would measure the client.
 */
export function jsonClient(baseUrl: string, headers: Record<string, string> = {}, maxSockets = 16) {
  const url = new URL(baseUrl);
  // Every simulated device keeps its connection between requests, as a real one would.
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  /** POSTs `body` and hands each chunk of the response body to `onChunk` as it arrives; resolves with the status. */
  const postChunks = (
    path: string,
    body: string | Buffer,
    onChunk: (chunk: Buffer) => void,
  ): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path,
          agent,
          headers: {
            ...headers,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.on('data', onChunk);
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  /** The response body as bytes, undecoded. */
  const postBytes = async (
    path: string,
    body: string | Buffer,
  ): Promise<{ status: number; body: Buffer }> => {
    const chunks: Buffer[] = [];
    const status = await postChunks(path, body, (chunk) => chunks.push(chunk));
    return { status, body: Buffer.concat(chunks) };
  };
  return {
    postChunks,
    postBytes,
    async post(path: string, body: string | Buffer): Promise<{ status: number; text: string }> {
      const res = await postBytes(path, body);
      return { status: res.status, text: res.body.toString() };
    },
    close() {
      agent.destroy();
    },
  };
}

/**
 * GETs `path` and hands each chunk of the body to `onChunk` as it arrives (nothing is kept), for
 * benchmarks of streamed downloads. Resolves with the status once the body has ended.
 */
export function streamGet(
  baseUrl: string,
  path: string,
  token: string,
  onChunk: (chunk: Buffer) => void,
): Promise<number> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    http
      .get(
        { host: url.hostname, port: url.port, path, headers: { authorization: `Bearer ${token}` } },
        (res) => {
          res.on('data', onChunk);
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      )
      .on('error', reject);
  });
}
