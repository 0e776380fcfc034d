import { describe, expect, it } from 'vitest';
import {
  MAX_JSON_DEPTH,
  nestsDeeperThan,
  type ProblemItem,
  parseJsonObject,
  rendererReferences,
} from './index.ts';

const nested = (depth: number, inner = '') => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;

describe('nesting depth', () => {
  it('counts objects and arrays, not brackets inside strings', () => {
    expect(nestsDeeperThan(nested(3), 3)).toBe(false);
    expect(nestsDeeperThan(nested(4), 3)).toBe(true);
    expect(nestsDeeperThan('{"a":{"b":[1,{"c":2}]}}', 4)).toBe(false);
    expect(nestsDeeperThan('{"a":{"b":[1,{"c":2}]}}', 3)).toBe(true);
    expect(nestsDeeperThan(`{"label":"${'[{'.repeat(500)}"}`, 1)).toBe(false);
    expect(nestsDeeperThan(`{"q\\"[[[":"\\\\","x":[[[]]]}`, 3)).toBe(true);
    expect(nestsDeeperThan(`{"q\\"[[[":"\\\\","x":[[]]}`, 3)).toBe(false);
  });

  it('parseJsonObject names a file nested deeper than MAX_JSON_DEPTH, without parsing it', () => {
    const errors: ProblemItem[] = [];
    const deep = `{"a":${nested(200_000)}}`;
    expect(parseJsonObject('forms/f/ui.json', deep, errors)).toBeUndefined();
    expect(errors).toEqual([
      {
        path: 'forms/f/ui.json',
        message: `nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`,
        code: 'too_deep',
      },
    ]);
    const deepest = `{"a":${nested(MAX_JSON_DEPTH - 1)}}`;
    expect(parseJsonObject('forms/f/ui.json', deepest, [])).toEqual(JSON.parse(deepest));
  });

  it('rendererReferences walks any depth without recursion', () => {
    let ui: unknown = { options: { format: 'deep-renderer' } };
    for (let i = 0; i < 200_000; i++) ui = i % 2 ? [ui] : { elements: ui };
    expect(rendererReferences('ui', ui)).toEqual(['deep-renderer']);
    const wide = { elements: Array.from({ length: 300_000 }, () => ({ options: { format: 'text' } })) };
    expect(rendererReferences('ui', wide)).toHaveLength(300_000);
  });
});
