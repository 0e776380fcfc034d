/** A part of a representation, both ends inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The ranges a `Range` header asks for out of `size` bytes (RFC 9110 §14.1.1, §14.2), each clipped
 * to the representation: a suffix longer than it (`bytes=-500` of 100 bytes) is all of it, and a
 * last position past its end is its end. `unsatisfiable` when none overlaps it (then 416);
 * `undefined` when the header is to be ignored: another unit, or not a byte-range set at all.
 * The unit is case-insensitive and empty list elements are allowed, as the RFC's list syntax says;
 * a range whose last position is before its first is skipped (the RFC lets a server reject it).
 * Of an empty representation a suffix range is satisfiable (§14.1.1) but no 206 can carry zero
 * bytes: then, when nothing else is asked for, the header is ignored and the empty whole is the answer.
 */
function requestedRanges(header: string, size: number): ByteRange[] | 'unsatisfiable' | undefined {
  const set = /^bytes=(.*)$/i.exec(header.trim());
  if (!set) return undefined;
  const ranges: ByteRange[] = [];
  let specs = 0;
  let emptySuffix = false;
  for (const element of set[1]!.split(',')) {
    const spec = element.trim();
    if (spec === '') continue;
    const positions = /^(\d*)-(\d*)$/.exec(spec);
    if (!positions || (positions[1] === '' && positions[2] === '')) return undefined;
    specs += 1;
    if (positions[1] === '') {
      const suffix = Number(positions[2]);
      if (suffix > 0 && size > 0) ranges.push({ start: Math.max(0, size - suffix), end: size - 1 });
      else if (suffix > 0) emptySuffix = true;
      continue;
    }
    const first = Number(positions[1]);
    const last = positions[2] === '' ? Number.POSITIVE_INFINITY : Number(positions[2]);
    if (first <= last && first < size) ranges.push({ start: first, end: Math.min(last, size - 1) });
  }
  if (specs === 0 || (ranges.length === 0 && emptySuffix)) return undefined;
  return ranges.length > 0 ? ranges : 'unsatisfiable';
}

/**
 * `If-Range` (RFC 9110 §13.1.5): the range applies only when the validator names the current
 * representation by its strong entity tag. A weak tag never matches, and neither can a date, since
 * no `Last-Modified` is sent: then the whole representation is the answer.
 */
function ifRangeHolds(header: string | undefined, etag: string): boolean {
  return header === undefined || header.trim() === etag;
}

/**
 * The one range of a GET to answer with 206, for a `size`-byte representation whose strong entity
 * tag is `etag`: `undefined` for the whole representation (no `Range`, an `If-Range` naming another
 * one, a header to ignore, or several ranges, which RFC 9110 lets a server answer so);
 * `unsatisfiable` for a 416.
 */
export function rangeToServe(
  headers: { range?: string | undefined; ifRange?: string | undefined },
  etag: string,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (headers.range === undefined || !ifRangeHolds(headers.ifRange, etag)) return undefined;
  const ranges = requestedRanges(headers.range, size);
  if (ranges === 'unsatisfiable') return ranges;
  return ranges?.length === 1 ? ranges[0] : undefined;
}
