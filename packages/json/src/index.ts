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
 * Both paths accept exactly RFC 8259 JSON and give the same values as `JSON.parse`, including an
 * own `__proto__` property and last-one-wins duplicate keys.
 */
export function parseJson(text: string): unknown {
  return hasEscapedKey(text) ? parseStrict(text) : JSON.parse(text);
}

/** Every string token, in order; `key` is set when the token is followed by a colon. */
const STRING_TOKEN = /"(?:[^"\\]|\\.)*"(?<key>\s*:)?/gs;

/** True when some object key in `text` is written with an escape sequence. */
export function hasEscapedKey(text: string): boolean {
  if (!text.includes('\\')) return false;
  STRING_TOKEN.lastIndex = 0;
  for (const match of text.matchAll(STRING_TOKEN)) {
    if (match.groups?.key !== undefined && match[0].includes('\\')) return true;
  }
  return false;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings may not hold raw control characters
const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function parseStrict(text: string): unknown {
  let at = 0;

  const fail = (expected: string): never => {
    throw new SyntaxError(
      at >= text.length
        ? `Unexpected end of JSON input (expected ${expected})`
        : `Unexpected token in JSON at position ${at} (expected ${expected})`,
    );
  };

  const skipWhitespace = () => {
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) at++;
      else return;
    }
  };

  const token = (pattern: RegExp, expected: string): string => {
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    if (!match) return fail(expected);
    at = pattern.lastIndex;
    return match[0];
  };

  // A string token parsed on its own is a value, which the native parser decodes correctly.
  const string = () => JSON.parse(token(STRING, 'a string')) as string;

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
      default:
        return Number(token(NUMBER, 'a value'));
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
