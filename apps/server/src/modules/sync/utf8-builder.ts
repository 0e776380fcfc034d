/**
 * Appends strings as UTF-8 into one growing buffer. A pull page (~0.5 MB) built this way is never
 * held as one joined JavaScript string, so it is neither flattened nor encoded a second time
 * before it is sent.
 */
export class Utf8Builder {
  #buffer: Buffer;
  #length = 0;

  /** `capacity`: the expected byte length; the buffer grows (doubling) if it is exceeded. */
  constructor(capacity: number) {
    this.#buffer = Buffer.allocUnsafe(Math.max(capacity, 64));
  }

  add(text: string): this {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8: grow only when that worst case may not fit.
    if (this.#buffer.length - this.#length < text.length * 3) this.#grow(text.length * 3);
    this.#length += this.#buffer.write(text, this.#length);
    return this;
  }

  get length(): number {
    return this.#length;
  }

  /** The bytes written so far (a view, not a copy). */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  #grow(needed: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + needed));
    this.#buffer.copy(next, 0, 0, this.#length);
    this.#buffer = next;
  }
}
