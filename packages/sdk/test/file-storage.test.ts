import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileStorage } from '../src/node.ts';

describe('file storage after a crash mid-write', () => {
  it('deletes the temporary files of writes that died, and not one another process may be writing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-file-storage-'));
    const abandoned = `.${randomUUID()}.tmp`;
    const inProgress = `.${randomUUID()}.tmp`;
    writeFileSync(path.join(dir, abandoned), 'x'.repeat(100_000));
    const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(path.join(dir, abandoned), twoHoursAgo, twoHoursAgo);
    writeFileSync(path.join(dir, inProgress), '{"half":');
    // An app's own file that merely looks alike is not the storage's to delete.
    writeFileSync(path.join(dir, '.notes.tmp'), 'mine');
    utimesSync(path.join(dir, '.notes.tmp'), twoHoursAgo, twoHoursAgo);

    const storage = new FileStorage(dir);
    await storage.set('outbox:queue', [1, 2]);
    expect(readdirSync(dir).sort()).toEqual([inProgress, '.notes.tmp', 'outbox%3Aqueue.json'].sort());
    expect(await storage.get('outbox:queue')).toEqual([1, 2]);
  });
});
