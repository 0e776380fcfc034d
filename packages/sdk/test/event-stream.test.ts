import { describe, expect, it } from 'vitest';
import { EventStreamParser } from '../src/event-stream.ts';

/** Feeds `chunks` one after another and returns every event they complete. */
function parse(...chunks: string[]) {
  const parser = new EventStreamParser();
  return chunks.flatMap((chunk) => parser.push(chunk));
}

describe('EventStreamParser', () => {
  it('dispatches events at blank lines, with their id, type and data; comments are skipped', () => {
    expect(
      parse(': heartbeat\n\nid: 3\nevent: version\ndata: {"current_version":3}\n\ndata: a\ndata: b\n\n'),
    ).toEqual([
      { event: 'version', data: '{"current_version":3}', id: '3' },
      { event: 'message', data: 'a\nb', id: '3' }, // the id persists, the type does not
    ]);
  });

  it('takes chunks cut anywhere, CRLF and lone CR line ends, and a leading BOM', () => {
    const text = '\uFEFFid: 1\r\nevent: version\rdata: x\r\n\r\nid: 2\ndata:y\n\n';
    const whole = parse(text);
    expect(whole).toEqual([
      { event: 'version', data: 'x', id: '1' },
      { event: 'message', data: 'y', id: '2' },
    ]);
    for (let cut = 1; cut < text.length; cut++)
      expect(parse(text.slice(0, cut), text.slice(cut))).toEqual(whole);
    expect(parse(...text)).toEqual(whole); // a character at a time
  });

  it('dispatches nothing for an event without data, and nothing before its blank line', () => {
    expect(parse('event: end\n\nid: 9\n\ndata: half')).toEqual([]);
  });
});
