import { describe, expect, it } from 'vitest';
import { rawQueryValues } from './exports.handlers.ts';

describe('rawQueryValues', () => {
  it('gives every value of the parameter as sent: escapes decoded, + kept', () => {
    expect(rawQueryValues('/x?form_type=a+b&form_type=c%20d&form_type=e%2Bf', 'form_type')).toEqual([
      'a+b',
      'c d',
      'e+f',
    ]);
    expect(rawQueryValues('/x?since_version=3&form%5Ftype=a/b:c&form_type&other=1', 'form_type')).toEqual([
      'a/b:c',
      '',
    ]);
    expect(rawQueryValues('/x?form_type=%ZZ%E2%82%AC%', 'form_type')).toEqual(['%ZZ€%']);
    expect(rawQueryValues('/x?form_type=a=b', 'form_type')).toEqual(['a=b']);
    expect(rawQueryValues('/x', 'form_type')).toEqual([]);
  });
});
