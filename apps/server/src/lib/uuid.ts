/**
 * A UUID as one string per UUID: lower case, without a `urn:uuid:` prefix (both valid as
 * `format: uuid`). Clients differ (iOS writes UUIDs in upper case, JavaScript and Java in lower),
 * so an id a client sends again must be compared in this form: a push's transmission id, a
 * refresh's Idempotency-Key.
 */
export function canonicalUuid(id: string): string {
  return id.toLowerCase().replace(/^urn:uuid:/, '');
}
