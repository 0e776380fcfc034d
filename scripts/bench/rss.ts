import { readFileSync } from 'node:fs';

/** Resident memory of a process (Linux, from /proc). */
export const rssOf = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** Samples a process's RSS every `intervalMs` until the returned function is called; it returns the peak. */
export function sampler(pid: number, intervalMs = 20): () => number {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, intervalMs);
  return () => {
    clearInterval(timer);
    return Math.max(peak, rssOf(pid));
  };
}
