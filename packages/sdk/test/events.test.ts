import { afterEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../src/events.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('Emitter', () => {
  it('hands a listener’s error to its reporter; the emitter and the other listeners go on', () => {
    const reported: unknown[] = [];
    const events = new Emitter((err) => reported.push(err));
    const heard: number[] = [];
    const broken = new Error('listener bug');
    events.on('queue:size', () => {
      throw broken;
    });
    events.on('queue:size', ({ pending }) => heard.push(pending));
    expect(() => events.emit('queue:size', { pending: 3, deadLetters: 0 })).not.toThrow();
    expect(heard).toEqual([3]);
    expect(reported).toEqual([broken]);
  });

  it('by default reports it later, as an uncaught error of its own (not the emitting call’s)', () => {
    let later: (() => void) | undefined;
    vi.spyOn(globalThis, 'queueMicrotask').mockImplementation((callback) => {
      later = callback;
    });
    const events = new Emitter();
    const broken = new Error('listener bug');
    events.on('sync:started', () => {
      throw broken;
    });
    events.emit('sync:started', { at: new Date() });
    expect(later).toBeTypeOf('function');
    expect(() => later?.()).toThrow(broken);
  });
});
