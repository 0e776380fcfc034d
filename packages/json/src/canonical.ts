import { isRawJson } from './raw-json.ts';

/** A value canonical JSON cannot write as it is: nested too deep, or a number JSON has no text for. */
export class CanonicalJsonError extends RangeError {
  override name = 'CanonicalJsonError';
}

/** Nesting deeper than this is refused (the writer recurses; the stack gives out at a few thousand). */
export const MAX_CANONICAL_DEPTH = 1000;

/**
 * JSON with object keys sorted (recursively) and no whitespace, so equal values always give equal
 * text whatever order they were written in. Unlike JSON.stringify, which writes `null` for them,
 * a non-finite number (`Infinity`, e.g. from parsing `1e400`, or `NaN`) is an error, as in RFC 8785:
 * text that changes a value would also give it a hash it does not have. So is nesting deeper than
 * `maxDepth` levels (at most MAX_CANONICAL_DEPTH). Both throw a CanonicalJsonError. A
 * JSON.rawJSON value (an integer too long for a double, from parseJsonExact) is written as its text.
 */
export function canonicalJson(value: unknown, maxDepth = MAX_CANONICAL_DEPTH): string {
  const limit = Math.min(maxDepth, MAX_CANONICAL_DEPTH);
  // JSON.stringify does the writing wherever it can: on the value itself when its keys are already
  // in order, else on a copy whose keys are inserted in order (about a third faster on records).
  try {
    const sorted = sortedForJson(value, limit);
    return sorted === UNSUPPORTED ? writeCanonicalJson(value, limit) : JSON.stringify(sorted);
  } catch (err) {
    if (err === TOO_DEEP) throw new CanonicalJsonError(`nested deeper than ${limit} levels`);
    throw err;
  }
}

/** Thrown from the depth that ran out, and told with the limit where it is known. */
const TOO_DEEP = Symbol('too deep');

function nonFinite(value: number): CanonicalJsonError {
  return new CanonicalJsonError(`${value} is not a number JSON can hold (too large, or not a number)`);
}

function writeCanonicalJson(value: unknown, depthLeft: number): string {
  if (typeof value === 'number' && !Number.isFinite(value)) throw nonFinite(value);
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (isRawJson(value)) return value.rawJSON;
  if (depthLeft === 0) throw TOO_DEEP;
  if (Array.isArray(value))
    return `[${value.map((item) => writeCanonicalJson(item, depthLeft - 1)).join(',')}]`;
  const keys = Object.keys(value).sort();
  let out = '{';
  for (const key of keys) {
    const inner = (value as Record<string, unknown>)[key];
    if (inner === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(key)}:${writeCanonicalJson(inner, depthLeft - 1)}`;
  }
  return `${out}}`;
}

const UNSUPPORTED = Symbol('unsupported');
/** Keys JavaScript enumerates in numeric order, whatever order they are inserted in. */
const INDEX_LIKE = /^\d+$/;

/**
 * `value` itself when JSON.stringify already writes it canonically, else a copy with its object
 * keys inserted in sorted order; UNSUPPORTED for anything but plain JSON data (or keys an object
 * cannot hold in sorted order), which writeCanonicalJson handles instead.
 */
function sortedForJson(value: unknown, depthLeft: number): unknown {
  if (typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw nonFinite(value);
    const plain = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
    return plain ? value : UNSUPPORTED;
  }
  if (value === null || isRawJson(value)) return value;
  if (depthLeft === 0) throw TOO_DEEP;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const sorted = sortedForJson(item, depthLeft - 1);
      if (sorted === UNSUPPORTED || item === undefined) return UNSUPPORTED;
      if (sorted !== item) {
        copy ??= value.slice();
        copy[i] = sorted;
      }
    }
    return copy ?? value;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return UNSUPPORTED;
  const object = value as Record<string, unknown>;
  let previous: string | undefined;
  let inOrder = true;
  let changed: Map<string, unknown> | undefined;
  for (const key in object) {
    if (previous !== undefined && previous > key) inOrder = false;
    previous = key;
    const item = object[key];
    const sorted = sortedForJson(item, depthLeft - 1);
    if (sorted === UNSUPPORTED) return UNSUPPORTED;
    if (sorted !== item) {
      changed ??= new Map();
      changed.set(key, sorted);
    }
  }
  if (inOrder && !changed) return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(object).sort()) {
    if (INDEX_LIKE.test(key) || key === '__proto__') return UNSUPPORTED;
    copy[key] = changed?.has(key) ? changed.get(key) : object[key];
  }
  return copy;
}
