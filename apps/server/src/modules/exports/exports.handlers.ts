import querystring from 'node:querystring';
import type { operations } from '@synk/contract';
import type { Request } from 'express';
import type { AppContext } from '../../app-context.ts';
import type { Handler } from '../../http/routes.ts';
import type { ExportFilter } from '../sync/sync.store.ts';

type ExportQuery = NonNullable<operations['getParquetExport']['parameters']['query']>;

function filterOf(req: Request): ExportFilter {
  // Coerced by the validator from the contract's parameter schemas.
  const { since_version, include_deleted } = req.query as ExportQuery;
  const types = rawQueryValues(req.originalUrl, 'form_type').filter((t) => t !== '');
  return {
    formTypes: types.length > 0 ? types : null,
    sinceVersion: Number(since_version ?? 0),
    includeDeleted: include_deleted === true || String(include_deleted) === 'true',
  };
}

/**
 * The values of query parameter `name` as sent: percent-escapes decoded, `+` kept. The contract
 * gives `form_type` `allowReserved` (form types hold any text and clients need not escape it), so
 * a `+` in it is a plus; Express's query parser reads it as a space (HTML form encoding), which
 * selected form type `x y` for `?form_type=x+y`. A malformed escape is kept as written, as the
 * query parser keeps it.
 */
export function rawQueryValues(url: string, name: string): string[] {
  const start = url.indexOf('?');
  if (start < 0) return [];
  const values: string[] = [];
  for (const pair of url.slice(start + 1).split('&')) {
    const equals = pair.indexOf('=');
    if (querystring.unescape(equals < 0 ? pair : pair.slice(0, equals)) !== name) continue;
    values.push(equals < 0 ? '' : querystring.unescape(pair.slice(equals + 1)));
  }
  return values;
}

export function exportsHandlers(ctx: AppContext): Record<'getParquetExport' | 'getCsvExport', Handler> {
  const { exports } = ctx.services;
  const stream =
    (format: 'parquet' | 'csv'): Handler =>
    async (req, res) => {
      const filter = filterOf(req);
      res.status(200).type('application/zip');
      res.setHeader(
        'Content-Disposition',
        `attachment; filename="observations_export${format === 'csv' ? '_csv' : ''}.zip"`,
      );
      res.setHeader('Cache-Control', 'no-store');
      // A HEAD gets a GET's headers without the export itself (the body would be thrown away).
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      // A failure before anything is sent is a problem answer (without the ZIP's
      // Content-Disposition); after, the problem handler cuts the stream (see problemHandler).
      await (format === 'parquet' ? exports.parquet(filter, res) : exports.csv(filter, res));
    };
  return { getParquetExport: stream('parquet'), getCsvExport: stream('csv') };
}
