import net from 'node:net';

/**
 * One HTTP request written by hand on its own connection, for what fetch and node:http cannot
 * send: any Host header or none, HTTP/1.0, a POST without Content-Length. `head` is the request
 * line and header lines (add `Connection: close`: the answer is read until the server closes).
 * The answer's body is de-chunked, and parsed when it is JSON.
 */
export function rawRequest(
  baseUrl: string,
  head: readonly string[],
  body = '',
): Promise<{ status: number; body: unknown }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const [headers = '', ...rest] = text.split('\r\n\r\n');
      let payload = rest.join('\r\n\r\n');
      if (/^transfer-encoding:\s*chunked/im.test(headers)) {
        let decoded = '';
        for (let at = 0; ; ) {
          const eol = payload.indexOf('\r\n', at);
          const size = Number.parseInt(payload.slice(at, eol), 16);
          if (!size) break;
          decoded += payload.slice(eol + 2, eol + 2 + size);
          at = eol + 2 + size + 2;
        }
        payload = decoded;
      }
      let parsed: unknown = payload;
      try {
        parsed = JSON.parse(payload);
      } catch {}
      resolve({ status, body: parsed });
    });
    // Not half-closed: the server closes the connection after answering (Connection: close).
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`);
  });
}
