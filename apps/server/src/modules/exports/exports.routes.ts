import { pending, type Route } from '../../http/routes.ts';

// Implemented by the data export issue; until then every operation answers 501 problem+json.
export function exportsRoutes(): Route[] {
  return [
    pending('getParquetExport', 'get', '/dataexport/parquet'),
    pending('getCsvExport', 'get', '/dataexport/csv'),
  ];
}
