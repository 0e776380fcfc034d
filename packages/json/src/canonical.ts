/**
 * JSON with object keys sorted (recursively) and no whitespace, so equal values always give equal
 * text whatever order they were written in.
 */
export function canonicalJson(value: unknown): string {
  // JSON.stringify does the writing wherever it can: on the value itself when its keys are already
  // in order, else on a copy whose keys are inserted in order (about a third faster on records).
  const sorted = sortedForJson(value);
  return sorted === UNSUPPORTED ? writeCanonicalJson(value) : JSON.stringify(sorted);
}

function writeCanonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(writeCanonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  let out = '{';
  for (const key of keys) {
    const inner = (value as Record<string, unknown>)[key];
    if (inner === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(key)}:${writeCanonicalJson(inner)}`;
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
function sortedForJson(value: unknown): unknown {
  if (typeof value !== 'object') {
    const plain = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
    return plain ? value : UNSUPPORTED;
  }
  if (value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const sorted = sortedForJson(item);
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
    const sorted = sortedForJson(item);
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
