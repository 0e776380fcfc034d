import { isRawJson, rawJson, withRoundedNumbers } from './raw-json.ts';

export { CanonicalJsonError, canonicalJson, MAX_CANONICAL_DEPTH } from './canonical.ts';
export { isRawJson, withRoundedNumbers };

/**
 * `JSON.parse` without V8's escaped-key bug.
 *
 * In V8 12.8 to at least 14.6 (Node 24 and 26, Chrome), once `JSON.parse` has read an object key
 * written with an escape (`"\\"`), a later key written with an escape can decode wrongly: `"\""`
 * comes back as `\` (nodejs/node#63785, crbug 521080746). Field data may use any text as a key, so
 * a record pushed or stored with such a key would be silently changed. Values are not affected.
 *
 * `parseJson` uses the native parser whenever no object key in the text contains a backslash (the
 * usual case, checked with one regular-expression scan, and skipped entirely when the text has no
 * backslash), and otherwise a strict parser of its own that builds keys without the native
 * parser's key cache (string tokens are decoded by `JSON.parse` as values, which is exact).
 * Both paths accept RFC 8259 JSON and give the same values as `JSON.parse`, including an own
 * `__proto__` property and last-one-wins duplicate keys. One difference: the strict path is
 * recursive, so nesting deep enough to exhaust the stack (hundreds of thousands of levels) is a
 * SyntaxError there while the native parser accepts it.
 */
export function parseJson(text: string): unknown {
  return hasEscapedKey(text) ? parseStrict(text) : JSON.parse(text);
}

const INTEGER_LITERAL = /^-?\d+$/;

/** Whether `value` holds an integral number no double holds exactly (beyond ±(2^53 − 1)). */
function holdsUnsafeInteger(value: unknown): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && !Number.isSafeInteger(value);
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) {
    for (const item of value) if (holdsUnsafeInteger(item)) return true;
    return false;
  }
  for (const key in value) if (holdsUnsafeInteger((value as Record<string, unknown>)[key])) return true;
  return false;
}

/** An integer literal beyond ±(2^53 − 1) as its own text; any other number as parsed. */
function exactNumber(value: number, source: string): unknown {
  return !Number.isSafeInteger(value) && INTEGER_LITERAL.test(source) ? rawJson.rawJSON!(source) : value;
}

/**
 * `parseJson`, except that an integer literal no double holds exactly (beyond ±(2^53 − 1), e.g. a
 * 19-digit identifier) comes back as `JSON.rawJSON` of its text, which JSON.stringify (and
 * `canonicalJson`) write back unchanged: field data passes through the server digit for digit, as
 * it did through 1.0.3's. Numbers are still numbers everywhere else, and other numbers come back
 * as JSON.parse gives them (`1.0` is 1, `1e400` Infinity).
 *
 * The text is parsed as usual first; only when that gave an integral number beyond ±(2^53 − 1)
 * (rare: such a literal, or a huge one like 1e20) is it parsed again keeping the literals' text
 * (a reviver costs ~4× the parse, and a scan of the text for long digit runs is set off by the
 * 17-digit fractions of every GPS reading). On a runtime without JSON.rawJSON it is parseJson.
 */
export function parseJsonExact(text: string): unknown {
  const value = parseJson(text);
  if (!rawJson.rawJSON || !holdsUnsafeInteger(value)) return value;
  if (hasEscapedKey(text)) return parseStrict(text, exactNumber);
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && context?.source !== undefined ? exactNumber(value, context.source) : value,
  );
}

const QUOTE = 0x22;

/**
 * Finds where string tokens end, with loops over `indexOf` rather than a regular expression (a
 * backtracking match over a multi-megabyte string overflows the stack). The next backslash is
 * remembered between calls, so a whole text is scanned in linear time however its strings and
 * escapes are laid out.
 */
class StringScanner {
  readonly #text: string;
  #backslash = -1;

  constructor(text: string) {
    this.#text = text;
  }

  #nextBackslash(from: number): number {
    if (this.#backslash !== Number.POSITIVE_INFINITY && this.#backslash < from) {
      const found = this.#text.indexOf('\\', from);
      this.#backslash = found === -1 ? Number.POSITIVE_INFINITY : found;
    }
    return this.#backslash;
  }

  /** Just past the string token whose opening quote is at `start` (-1 if never closed), and whether it holds an escape. */
  end(start: number): { end: number; escaped: boolean } {
    let escaped = false;
    let at = start + 1;
    let quote = this.#text.indexOf('"', at);
    for (;;) {
      if (quote === -1) return { end: -1, escaped };
      const backslash = this.#nextBackslash(at);
      if (backslash > quote) return { end: quote + 1, escaped };
      escaped = true;
      at = backslash + 2; // the escaped character, whatever it is, cannot end the string
      if (quote < at) quote = this.#text.indexOf('"', at);
    }
  }
}

const isWhitespace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** True when some object key in `text` is written with an escape sequence. */
export function hasEscapedKey(text: string): boolean {
  if (!text.includes('\\')) return false;
  const strings = new StringScanner(text);
  for (let at = text.indexOf('"'); at !== -1; ) {
    const { end, escaped } = strings.end(at);
    if (end === -1) return false; // not JSON: the native parser will say so
    if (escaped) {
      let next = end;
      while (isWhitespace(text.charCodeAt(next))) next++;
      if (text.charCodeAt(next) === 0x3a) return true; // ':' follows: a key
    }
    at = text.indexOf('"', end);
  }
  return false;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function parseStrict(
  text: string,
  number: (value: number, source: string) => unknown = (value) => value,
): unknown {
  let at = 0;
  const strings = new StringScanner(text);

  const fail = (expected: string): never => {
    throw new SyntaxError(
      at >= text.length
        ? `Unexpected end of JSON input (expected ${expected})`
        : `Unexpected token in JSON at position ${at} (expected ${expected})`,
    );
  };

  const skipWhitespace = () => {
    while (isWhitespace(text.charCodeAt(at))) at++;
  };

  const token = (pattern: RegExp, expected: string): string => {
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    if (!match) return fail(expected);
    at = pattern.lastIndex;
    return match[0];
  };

  // A string token parsed on its own is a value, which the native parser decodes correctly.
  const string = (): string => {
    if (text.charCodeAt(at) !== QUOTE) fail('a string');
    const { end } = strings.end(at);
    if (end === -1) fail('the end of a string');
    const token = text.slice(at, end);
    at = end;
    return JSON.parse(token) as string; // rejects raw control characters and bad escapes
  };

  const literal = (word: string, value: unknown) => {
    if (!text.startsWith(word, at)) fail('a value');
    at += word.length;
    return value;
  };

  function value(): unknown {
    skipWhitespace();
    switch (text[at]) {
      case '{':
        return object();
      case '[':
        return array();
      case '"':
        return string();
      case 't':
        return literal('true', true);
      case 'f':
        return literal('false', false);
      case 'n':
        return literal('null', null);
      default: {
        const source = token(NUMBER, 'a value');
        return number(Number(source), source);
      }
    }
  }

  function object(): Record<string, unknown> {
    at++; // {
    const result: Record<string, unknown> = {};
    skipWhitespace();
    if (text[at] === '}') {
      at++;
      return result;
    }
    for (;;) {
      skipWhitespace();
      if (text[at] !== '"') fail('a property name');
      const key = string();
      skipWhitespace();
      if (text[at] !== ':') fail("':'");
      at++;
      // defineProperty: `__proto__` becomes an own property, as with JSON.parse, never the prototype.
      Object.defineProperty(result, key, {
        value: value(),
        writable: true,
        enumerable: true,
        configurable: true,
      });
      skipWhitespace();
      if (text[at] === ',') {
        at++;
        continue;
      }
      if (text[at] === '}') {
        at++;
        return result;
      }
      fail("',' or '}'");
    }
  }

  function array(): unknown[] {
    at++; // [
    const result: unknown[] = [];
    skipWhitespace();
    if (text[at] === ']') {
      at++;
      return result;
    }
    for (;;) {
      result.push(value());
      skipWhitespace();
      if (text[at] === ',') {
        at++;
        continue;
      }
      if (text[at] === ']') {
        at++;
        return result;
      }
      fail("',' or ']'");
    }
  }

  try {
    const result = value();
    skipWhitespace();
    if (at !== text.length) fail('the end of the input');
    return result;
  } catch (err) {
    if (err instanceof RangeError) throw new SyntaxError('JSON nested too deeply');
    throw err;
  }
}
