import type busboy from 'busboy';

/** busboy's per-part header parser: it hands each part's headers to `cb`, then forgets them. */
interface PartHeaderParser {
  cb: (header: Record<string, string[] | undefined>) => void;
}

/**
 * The `Content-Type` header of the part busboy is announcing, as sent (`undefined` when it had
 * none), read from within its 'file' and 'field' events.
 *
 * busboy (pinned at 1.6.0) reports a part's type without its parameters, so a text file's
 * `charset` was lost and the file served as another encoding. Its header parser, installed on the
 * parser as `_hparser` at each part, calls back with the part's headers just before announcing the
 * part, in the same turn: this wraps that callback to keep the Content-Type. Should busboy's
 * internals move, nothing breaks (the parameters are lost again), and the charset test fails.
 */
export function watchPartContentType(parser: busboy.Busboy): () => string | undefined {
  let current: string | undefined;
  if (!Object.hasOwn(parser, '_hparser')) return () => undefined;
  let installed = (parser as unknown as { _hparser: PartHeaderParser | null })._hparser;
  const wrapped = new WeakSet<PartHeaderParser>();
  const wrap = (headerParser: PartHeaderParser | null) => {
    if (!headerParser || wrapped.has(headerParser) || typeof headerParser.cb !== 'function') return;
    wrapped.add(headerParser);
    const announce = headerParser.cb;
    headerParser.cb = (header) => {
      current = header['content-type']?.[0];
      announce(header);
    };
  };
  wrap(installed);
  Object.defineProperty(parser, '_hparser', {
    configurable: true,
    enumerable: true,
    get: () => installed,
    set: (value: PartHeaderParser | null) => {
      wrap(value);
      installed = value;
    },
  });
  return () => current;
}
