/** JSON.rawJSON / JSON.isRawJSON (ES2026; Node 21+, current browsers), absent from older runtimes and from TypeScript's lib. */
export const rawJson = JSON as unknown as {
  rawJSON?: (text: string) => object;
  isRawJSON?: (value: unknown) => value is { readonly rawJSON: string };
};

/** Whether `value` is a JSON.rawJSON object: JSON.stringify writes its text as it is. */
export function isRawJson(value: unknown): value is { readonly rawJSON: string } {
  return rawJson.isRawJSON?.(value) ?? false;
}

/**
 * `value` with every JSON.rawJSON integer (from parseJsonExact) as the nearest number, for checks
 * that need numbers (a JSON Schema's `type: integer`, `minimum`): a copy where one is found, else
 * `value` itself.
 */
export function withRoundedNumbers(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (isRawJson(value)) return Number(value.rawJSON);
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const rounded = withRoundedNumbers(value[i]);
      if (rounded === value[i]) continue;
      copy ??= value.slice();
      copy[i] = rounded;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const rounded = withRoundedNumbers(item);
    if (rounded !== item) {
      copy ??= { ...value };
      // defineProperty: an own `__proto__` key stays a property.
      Object.defineProperty(copy, key, {
        value: rounded,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
  }
  return copy ?? value;
}
