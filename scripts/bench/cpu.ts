import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds (user + system) a process has used so far, or undefined when it is gone. */
export function cpuOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** The parent of a process, or undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * The benchmark's PostgreSQL server: its postmaster and the backends and workers it forked (not
 * another PostgreSQL that happens to run on the machine, e.g. a test suite's).
 */
function postgresPids(postmaster: number | undefined): number[] {
  if (postmaster === undefined) return [];
  const children = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => parentOf(pid) === postmaster);
  return [postmaster, ...children];
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
function machine(): { busy: number; total: number } {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const ticks = values.map(Number);
  const idle = ticks[3]! + ticks[4]!; // idle + iowait
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
}

export interface CpuSplit {
  /** Average cores busy over the interval, by role. */
  servers: number;
  postgres: number;
  clients: number;
  /** Everything else on the machine (other jobs). */
  other: number;
  cores: number;
}

/**
 * Measures where the CPU goes between `start()` and `stop()`: the given server processes, the
 * PostgreSQL server whose postmaster is `postmasterPid` (its share counts as "other" when unknown),
 * this (client) process, and the rest of the machine.
 */
export function cpuSplit(serverPids: number[], postmasterPid: number | undefined): { stop(): CpuSplit } {
  const startedAt = performance.now();
  const pgBefore = new Map(postgresPids(postmasterPid).map((pid) => [pid, cpuOf(pid) ?? 0]));
  const serversBefore = serverPids.map((pid) => cpuOf(pid) ?? 0);
  const clientBefore = process.cpuUsage();
  const machineBefore = machine();
  return {
    stop() {
      const seconds = (performance.now() - startedAt) / 1000;
      const servers = serverPids.reduce((sum, pid, i) => sum + ((cpuOf(pid) ?? 0) - serversBefore[i]!), 0);
      let postgres = 0;
      for (const pid of postgresPids(postmasterPid)) postgres += (cpuOf(pid) ?? 0) - (pgBefore.get(pid) ?? 0);
      const used = process.cpuUsage(clientBefore);
      const clients = (used.user + used.system) / 1e6;
      const busy = machine().busy - machineBefore.busy;
      return {
        servers: servers / seconds,
        postgres: postgres / seconds,
        clients: clients / seconds,
        other: Math.max(0, busy - servers - postgres - clients) / seconds,
        cores: availableParallelism(),
      };
    },
  };
}

export const formatSplit = (s: CpuSplit) =>
  `servers ${s.servers.toFixed(2)}, PostgreSQL ${s.postgres.toFixed(2)}, clients ${s.clients.toFixed(2)}, other ${s.other.toFixed(2)} of ${s.cores} cores`;
