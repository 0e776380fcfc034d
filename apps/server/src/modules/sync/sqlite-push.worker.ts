/**
 * The SQLite push thread (see SqlitePushThread in sqlite-push.ts): writes the pushes it is sent, one
 * after another, each in one transaction on a connection of its own to the server's database file.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  type PushThreadAnswer,
  type PushThreadData,
  type PushThreadRequest,
  SqlitePushWriter,
} from './sqlite-push.ts';

const { file, busyTimeoutMs } = workerData as PushThreadData;
const port = parentPort!;
const db = new Database(file, { fileMustExist: true, timeout: busyTimeoutMs });
// As the server's own connection (db/orm.ts): every commit reaches the disk before it is answered.
db.pragma('synchronous = full');
const writer = new SqlitePushWriter(db);

port.on('message', (message: PushThreadRequest) => {
  if ('close' in message) {
    db.close();
    port.close();
    return;
  }
  let answer: PushThreadAnswer;
  try {
    answer = { id: message.id, outcome: writer.write(message.request) };
  } catch (err) {
    const {
      name,
      message: text,
      code,
      stack,
    } = err as {
      name?: string;
      message?: string;
      code?: unknown;
      stack?: string;
    };
    answer = {
      id: message.id,
      error: {
        name: name ?? 'Error',
        message: text ?? String(err),
        ...(typeof code === 'string' ? { code } : {}),
        ...(stack ? { stack } : {}),
      },
    };
  }
  port.postMessage(answer);
});
