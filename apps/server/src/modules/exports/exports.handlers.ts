import type { operations } from '@synk/contract';
import type { Request } from 'express';
import type { AppContext } from '../../app-context.ts';
import type { Handler } from '../../http/routes.ts';
import type { ExportFilter } from '../sync/sync.store.ts';

type ExportQuery = NonNullable<operations['getParquetExport']['parameters']['query']>;

function filterOf(req: Request): ExportFilter {
  // Coerced by the validator from the contract's parameter schemas (a lone form_type still
  // arrives as a string when nothing turned it into an array).
  const { form_type, since_version, include_deleted } = req.query as ExportQuery & {
    form_type?: string | string[];
  };
  const types = form_type === undefined ? null : ([] as string[]).concat(form_type).filter((t) => t !== '');
  return {
    formTypes: types && types.length > 0 ? types : null,
    sinceVersion: Number(since_version ?? 0),
    includeDeleted: include_deleted === true || String(include_deleted) === 'true',
  };
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
      try {
        await (format === 'parquet' ? exports.parquet(filter, res) : exports.csv(filter, res));
      } catch (err) {
        if (!res.headersSent) {
          // The problem+json that follows is no attachment.
          res.removeHeader('Content-Disposition');
          throw err;
        }
        if (res.destroyed) {
          // The client went away: the usual end of an abandoned download, not a server fault.
          ctx.logger.info({ err }, 'export abandoned by the client');
          return;
        }
        // Mid-stream the status is already out: cut the connection so the client sees a broken ZIP, not a short one.
        ctx.logger.error({ err }, 'export failed mid-stream');
        res.destroy(err as Error);
      }
    };
  return { getParquetExport: stream('parquet'), getCsvExport: stream('csv') };
}
