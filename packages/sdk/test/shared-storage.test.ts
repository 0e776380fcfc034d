import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createClient, type PushObservation } from '../src/client.ts';
import { withFileLock } from '../src/file-lock.ts';
import { FileStorage } from '../src/node.ts';
import { Outbox } from '../src/outbox.ts';
import { MemoryStorage } from '../src/storage.ts';

const CHILD = fileURLToPath(new URL('./fixtures/shared-storage-child.ts', import.meta.url));
const run = promisify(execFile);
const child = (...args: string[]) => run(process.execPath, [CHILD, ...args]);
const tempDir = (name: string) => mkdtempSync(path.join(tmpdir(), `synk-${name}-`));
const record = (id: string): PushObservation => ({
  observation_id: id,
  form_type: 'visit',
  data: {},
  deleted: false,
});

/** Memory storage whose every operation takes a few event-loop turns, as a real store's do. */
class SlowStorage extends MemoryStorage {
  #n = 0;
  async #pause(): Promise<void> {
    const turns = (this.#n++ * 7) % 4;
    for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
  }
  override async get<T>(key: string): Promise<T | undefined> {
    await this.#pause();
    return super.get<T>(key);
  }
  override async set(key: string, value: unknown): Promise<void> {
    await this.#pause();
    await super.set(key, value);
  }
  override async delete(key: string): Promise<void> {
    await this.#pause();
    await super.delete(key);
  }
}

/** A process id that existed and does not any more. */
async function deadPid(): Promise<number> {
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => gone.on('exit', resolve));
  return gone.pid!;
}

describe('clients sharing one storage', () => {
  it('two outboxes on one storage object lose no save while batches are taken (one app, two clients)', async () => {
    const storage = new SlowStorage();
    const [a, b, sender] = [new Outbox(storage), new Outbox(storage), new Outbox(storage)];
    const sent: string[] = [];
    let saving = true;
    const send = async () => {
      let n = 0;
      while (saving || (await sender.sizes()).pending > 0) {
        const batch = await sender.nextBatch(3, () => `t${n++}`);
        if (!batch) continue;
        sent.push(...batch.records.map((r) => r.observation_id));
        await sender.finishBatch(batch.transmission_id);
      }
    };
    const sending = send();
    await Promise.all(
      ['a', 'b'].map(async (prefix, k) => {
        for (let i = 0; i < 40; i++) await [a, b][k]!.save(record(`${prefix}${i}`));
      }),
    );
    saving = false;
    await sending;
    expect(sent.length).toBe(80);
    expect(new Set(sent).size).toBe(80);
  });

  it('processes saving into one directory at once lose no record', async () => {
    const dir = tempDir('shared-outbox');
    await Promise.all(['p', 'q', 'r'].map((prefix) => child('save', dir, prefix, '25')));
    const pending = await new Outbox(new FileStorage(dir)).pending();
    expect(pending.length).toBe(75);
    for (const prefix of ['p', 'q', 'r']) {
      // Each process's own saves stay in its order.
      const own = pending.map((r) => r.observation_id).filter((id) => id.startsWith(`${prefix}-`));
      expect(own).toEqual(Array.from({ length: 25 }, (_, i) => `${prefix}-${i}`));
    }
  });

  it('clients starting together on one storage take one client id', async () => {
    const storage = new SlowStorage();
    const ids = await Promise.all(
      Array.from({ length: 5 }, () => createClient({ baseUrl: 'http://127.0.0.1:9', storage }).clientId()),
    );
    expect(new Set(ids).size).toBe(1);
    expect(await storage.get('client:id')).toBe(ids[0]);
  });
});

describe('a store whose lock fails', () => {
  it('fails that refresh only: the next one takes the lock again', async () => {
    let failures = 1;
    const storage = new (class extends MemoryStorage {
      async lock<T>(_name: string, critical: () => Promise<T>): Promise<T> {
        if (failures-- > 0) throw new Error('lock unavailable');
        return critical();
      }
    })();
    const client = createClient({ baseUrl: 'http://127.0.0.1:9', storage });
    await expect(client.auth.refresh()).rejects.toThrow('lock unavailable');
    await expect(client.auth.refresh()).resolves.toBeUndefined(); // no session, no credentials
  });
});

describe('file locks', () => {
  it('let one process at a time in', async () => {
    const dir = tempDir('lock-count');
    const counter = path.join(dir, 'counter');
    await Promise.all(Array.from({ length: 3 }, () => child('count', dir, counter, '20')));
    expect(readFileSync(counter, 'utf8')).toBe('60');
  });

  it('take over at once a lock whose process on this host is gone (a crash)', async () => {
    const lock = path.join(tempDir('lock-crash'), 'held.lock');
    mkdirSync(lock);
    writeFileSync(
      path.join(lock, 'owner'),
      JSON.stringify({ pid: await deadPid(), host: hostname(), token: 'x' }),
    );
    const started = Date.now();
    // staleMs of a minute: only the dead process lets it through in time.
    await withFileLock(lock, async () => undefined, { staleMs: 60_000, refreshMs: 1_000 });
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('take over at once a lock of a previous process with this process id (a restarted container is process 1 again)', async () => {
    const lock = path.join(tempDir('lock-pid-reused'), 'held.lock');
    mkdirSync(lock);
    writeFileSync(
      path.join(lock, 'owner'),
      JSON.stringify({ pid: process.pid, host: hostname(), token: 'before' }),
    );
    const started = Date.now();
    await withFileLock(lock, async () => undefined, { staleMs: 60_000, refreshMs: 1_000 });
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('let one of several waiters take over an abandoned lock, never two at once', async () => {
    for (let round = 0; round < 10; round++) {
      const dir = tempDir('lock-takeover');
      const lock = path.join(dir, 'held.lock');
      mkdirSync(lock);
      writeFileSync(
        path.join(lock, 'owner'),
        JSON.stringify({ pid: await deadPid(), host: hostname(), token: 'x' }),
      );
      let inside = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 4 }, () =>
          withFileLock(lock, async () => {
            most = Math.max(most, ++inside);
            await new Promise((resolve) => setTimeout(resolve, 5));
            inside--;
          }),
        ),
      );
      expect(most).toBe(1);
    }
  });

  it("wait for another host's lock until it has not been refreshed for staleMs", async () => {
    const lock = path.join(tempDir('lock-remote'), 'held.lock');
    mkdirSync(lock);
    writeFileSync(
      path.join(lock, 'owner'),
      JSON.stringify({ pid: 1, host: 'elsewhere.invalid', token: 'x' }),
    );
    const options = { staleMs: 1_000, refreshMs: 100 };
    const started = Date.now();
    let entered = 0;
    await withFileLock(
      lock,
      async () => {
        entered = Date.now();
      },
      options,
    );
    // It waited for the lock to age (fresh when the wait began), then took it over.
    expect(entered - started).toBeGreaterThanOrEqual(900);

    // Aged already: taken over at once.
    mkdirSync(lock);
    writeFileSync(
      path.join(lock, 'owner'),
      JSON.stringify({ pid: 1, host: 'elsewhere.invalid', token: 'y' }),
    );
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    const again = Date.now();
    await withFileLock(lock, async () => undefined, { staleMs: 30_000, refreshMs: 1_000 });
    expect(Date.now() - again).toBeLessThan(15_000);
  });

  it('keep a live holder: refreshed while held, and not deleted by a holder it was taken from', async () => {
    const lock = path.join(tempDir('lock-live'), 'held.lock');
    const options = { staleMs: 300, refreshMs: 50 };
    let secondIn = false;
    let second: Promise<void> | undefined;
    await withFileLock(
      lock,
      async () => {
        // A waiter on another "host" would take over a lock not refreshed for 300 ms; this holder refreshes it.
        const owner = JSON.parse(readFileSync(path.join(lock, 'owner'), 'utf8'));
        writeFileSync(path.join(lock, 'owner'), JSON.stringify({ ...owner, host: 'elsewhere.invalid' }));
        second = withFileLock(
          lock,
          async () => {
            secondIn = true;
          },
          options,
        );
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        expect(secondIn).toBe(false);
        writeFileSync(path.join(lock, 'owner'), JSON.stringify(owner));
      },
      options,
    );
    await second;
    expect(secondIn).toBe(true);

    // A holder whose lock was taken over (its token replaced) leaves the new holder's lock alone.
    await withFileLock(
      lock,
      async () => {
        writeFileSync(
          path.join(lock, 'owner'),
          JSON.stringify({ pid: process.pid, host: hostname(), token: 'new' }),
        );
      },
      options,
    );
    expect(JSON.parse(readFileSync(path.join(lock, 'owner'), 'utf8')).token).toBe('new');
  });
});
