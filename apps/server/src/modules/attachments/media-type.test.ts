import { describe, expect, it } from 'vitest';
import { formatMediaType, mediaTypeEssence, parseDeclaredMediaType } from './media-type.ts';

const normalised = (header: string) => {
  const type = parseDeclaredMediaType(header);
  return type && formatMediaType(type);
};

describe('a declared media type', () => {
  it('keeps its type and charset, in lower case, and drops every other parameter', () => {
    expect(normalised('text/plain; charset=ISO-8859-1')).toBe('text/plain; charset=iso-8859-1');
    expect(normalised('Text/CSV;Charset="Windows-1252"; header=present')).toBe(
      'text/csv; charset=windows-1252',
    );
    expect(normalised('text/plain; format=flowed; charset=utf-8; delsp=yes')).toBe(
      'text/plain; charset=utf-8',
    );
    expect(normalised('image/jpeg; name="x.jpg"')).toBe('image/jpeg');
    expect(normalised('  application/vnd.api+json  ')).toBe('application/vnd.api+json');
  });

  it('the first charset counts; one that is not a charset name is dropped', () => {
    expect(normalised('text/plain; charset=utf-8; charset=latin1')).toBe('text/plain; charset=utf-8');
    for (const charset of ['"a b"', 'a,b', '"x\\"', '<script>', '', '""', `${'x'.repeat(41)}`, 'é'])
      expect(normalised(`text/plain; charset=${charset}`), charset).toBe('text/plain');
  });

  it('is no type at all when its type or subtype is malformed or too long', () => {
    for (const header of [
      '',
      'text',
      'text/',
      '/plain',
      'text/pl ain',
      'te(x)t/plain',
      `text/${'a'.repeat(128)}`,
    ])
      expect(parseDeclaredMediaType(header), header).toBeUndefined();
    expect(normalised(`text/${'a'.repeat(127)}`)).toBe(`text/${'a'.repeat(127)}`);
  });

  it('a stored type without its parameters', () => {
    expect(mediaTypeEssence('text/plain; charset=utf-8')).toBe('text/plain');
    expect(mediaTypeEssence('image/png')).toBe('image/png');
  });
});
