/**
 * Headers for serving bytes a client uploaded. Opened in a browser as a document on this server's
 * origin, uploaded HTML or SVG could run script there: this makes such a document sandboxed (a
 * unique origin, no script) and able to load nothing, and keeps the browser from sniffing any
 * other type into an active one. They only govern documents: an app that fetches the bytes, or
 * shows them in an `<img>` or `<video>`, is not affected.
 */
const UNTRUSTED_CONTENT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': "default-src 'none'; sandbox",
  'X-Content-Type-Options': 'nosniff',
});

export function setUntrustedContentHeaders(res: { setHeader(name: string, value: string): unknown }): void {
  for (const [name, value] of Object.entries(UNTRUSTED_CONTENT_HEADERS)) res.setHeader(name, value);
}
