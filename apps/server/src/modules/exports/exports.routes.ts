import type { AppContext } from '../../app-context.ts';
import type { Route } from '../../http/routes.ts';
import { exportsHandlers } from './exports.handlers.ts';

export function exportsRoutes(ctx: AppContext): Route[] {
  const h = exportsHandlers(ctx);
  return [
    {
      operationId: 'getParquetExport',
      method: 'get',
      path: '/dataexport/parquet',
      handler: h.getParquetExport,
    },
    { operationId: 'getCsvExport', method: 'get', path: '/dataexport/csv', handler: h.getCsvExport },
  ];
}
