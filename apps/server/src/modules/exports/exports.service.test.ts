import { describe, expect, it } from 'vitest';
import { planScans } from './exports.service.ts';

describe('planScans', () => {
  it('shares scans among the types holding a large share of the records, four at a time, in order', () => {
    const dense = ['a', 'b', 'c', 'd', 'e'].map((t) => [t, 100] as const);
    expect(planScans(dense)).toEqual([['a', 'b', 'c', 'd'], ['e']]);
  });

  it('reads each type holding under a sixth of the records on its own, where it comes in order', () => {
    // 1,000 records: 'big', 'huge' and 'rest' hold more than a sixth each, 'few' and 'one' less.
    const types = [
      ['big', 300],
      ['few', 166],
      ['huge', 334],
      ['one', 1],
      ['rest', 199],
    ] as const;
    expect(planScans(types)).toEqual([['few'], ['one'], ['big', 'huge', 'rest']]);
  });

  it('reads thousands of small types one by one, and one type alone', () => {
    const many = Array.from({ length: 10_000 }, (_, k) => [`t${k}`, 5] as const);
    const scans = planScans(many);
    expect(scans).toHaveLength(10_000);
    expect(scans.every((scan) => scan.length === 1)).toBe(true);
    expect(planScans([['only', 7]])).toEqual([['only']]);
    expect(planScans([])).toEqual([]);
  });
});
