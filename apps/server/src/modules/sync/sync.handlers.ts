import { parseJsonExact } from '@synk/json';
import type { AppContext } from '../../app-context.ts';
import { principalOf } from '../../http/authenticate.ts';
import { type Handler, sendJson } from '../../http/routes.ts';
import { sha256HexOffThread } from '../../lib/canonical-json.ts';
import type { PullBody, PullParams, PushBody, TombstonePurgeBody } from './sync.service.ts';

export function syncHandlers(
  ctx: AppContext,
): Record<'syncPush' | 'syncPull' | 'listConflicts' | 'listSyncClients' | 'purgeTombstones', Handler> {
  const { sync } = ctx.services;
  return {
    async syncPush(req, res) {
      const rawBody = (req as { rawBody?: Buffer }).rawBody ?? Buffer.from(JSON.stringify(req.body));
      const { response, replayed } = await sync.push(
        principalOf(res),
        req.body as PushBody,
        req.header('idempotency-key'),
        sha256HexOffThread(rawBody),
      );
      if (replayed) res.setHeader('Idempotent-Replayed', 'true');
      sendJson(res, 'syncPush', 200, response);
    },
    async syncPull(req, res) {
      const query = req.query as { limit?: string | number; schemaType?: string; page_token?: string };
      const params: PullParams = { ...query, limit: Number(query.limit ?? 50) };
      const pieces = await sync.pull(principalOf(res), req.body as PullBody, params);
      // Pages are sent as the bytes the store wrote (no parse/stringify of every record); when
      // responses are validated (tests, development) they go through res.json instead.
      if (ctx.config.validateResponses) {
        res.status(200).json(parseJsonExact(Buffer.concat(pieces).toString()));
        return;
      }
      res.status(200).type('application/json');
      res.setHeader(
        'Content-Length',
        pieces.reduce((n, piece) => n + piece.length, 0),
      );
      for (const piece of pieces.slice(0, -1)) res.write(piece);
      res.end(pieces.at(-1));
    },
    async listConflicts(req, res) {
      const { after = 0, limit = 50 } = req.query as { after?: number; limit?: number };
      sendJson(res, 'listConflicts', 200, await sync.conflicts(Number(after), Number(limit)));
    },
    async purgeTombstones(req, res) {
      sendJson(res, 'purgeTombstones', 200, await sync.purgeTombstones(req.body as TombstonePurgeBody));
    },
    async listSyncClients(req, res) {
      const { after = '', limit = 50 } = req.query as { after?: string; limit?: number };
      sendJson(res, 'listSyncClients', 200, await sync.clients(after, Number(limit)));
    },
  };
}
