import { describe, expect, it } from 'vitest';
import { CURRENT_API_VERSION, negotiateApiVersion } from '../src/http/api-version.ts';
import { HttpProblem } from '../src/http/errors.ts';

describe('negotiateApiVersion', () => {
  it('serves the current version when none is asked for', () => {
    expect(negotiateApiVersion(undefined)).toBe(CURRENT_API_VERSION);
  });

  it.each([
    ['1.0.0', '1.0.0'],
    ['1.0.2', '1.0.0'],
    ['1.0.3', '1.0.3'],
    ['1.0.9', '1.0.3'],
    ['1.1.0', '1.1.0'],
    ['1.99.7', '1.1.0'],
    ['1.9999999.0', '1.1.0'],
    [`1.${'9'.repeat(400)}.0`, '1.1.0'],
  ])('asked for %s, serves %s (highest supported ≤ requested, same major)', (asked, served) => {
    expect(negotiateApiVersion(asked)).toBe(served);
  });

  it.each(['1', '1.0', 'v1.0.0', '1.0.0-beta', 'latest', '', ' ', '1..0', '1.0.0.0'])(
    'rejects malformed %j with 400',
    (asked) => {
      const result = negotiateApiVersion(asked);
      expect(result).toBeInstanceOf(HttpProblem);
      expect((result as HttpProblem).status).toBe(400);
      expect((result as HttpProblem).code).toBe('invalid_api_version');
    },
  );

  it.each(['0.9.0', '2.0.0', '10.1.1', '9999999.0.0', `${'9'.repeat(400)}.0.0`])(
    'rejects unsupported major %s with 406',
    (asked) => {
      const result = negotiateApiVersion(asked);
      expect(result).toBeInstanceOf(HttpProblem);
      expect((result as HttpProblem).status).toBe(406);
    },
  );
});
