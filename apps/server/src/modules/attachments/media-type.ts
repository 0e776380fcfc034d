/**
 * A part's declared `Content-Type`, reduced to what is safe to store and serve back: the type and
 * subtype as RFC 6838 §4.2 allows them (lower case), and a `charset` when it names one, since a
 * text attachment read in the wrong encoding is garbled. Every other parameter is dropped: they are
 * the uploader's text, and the stored type goes out verbatim as a response header.
 */
export interface DeclaredMediaType {
  /** `type/subtype`, lower case. */
  essence: string;
  /** Lower case; only names of letters, digits and `. _ : + -` (every registered charset's). */
  charset?: string;
}

/** RFC 6838 §4.2 restricted-name, at most 127 characters. */
const RESTRICTED_NAME = '[a-z0-9][a-z0-9!#$&^_.+-]{0,126}';
const ESSENCE = new RegExp(`^${RESTRICTED_NAME}/${RESTRICTED_NAME}$`);
const CHARSET = /^[a-z0-9][a-z0-9._:+-]{0,39}$/;

/** `undefined` when the type itself is malformed (the caller guesses one from the file name instead). */
export function parseDeclaredMediaType(header: string): DeclaredMediaType | undefined {
  const [type = '', ...parameters] = header.split(';');
  const essence = type.trim().toLowerCase();
  if (!ESSENCE.test(essence)) return undefined;
  for (const parameter of parameters) {
    const equals = parameter.indexOf('=');
    if (equals < 0 || parameter.slice(0, equals).trim().toLowerCase() !== 'charset') continue;
    const value = parameter
      .slice(equals + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    // The first charset counts; a malformed one is as good as none.
    return CHARSET.test(value) ? { essence, charset: value } : { essence };
  }
  return { essence };
}

export function formatMediaType(type: DeclaredMediaType): string {
  return type.charset === undefined ? type.essence : `${type.essence}; charset=${type.charset}`;
}

/** A stored type without its parameters (what decides how it is served). */
export function mediaTypeEssence(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim();
}
