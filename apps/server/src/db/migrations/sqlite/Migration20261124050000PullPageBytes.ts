import { Migration } from '@mikro-orm/migrations';
import { LARGE_DATA_BYTES } from '../../../modules/sync/page-bytes.ts';

/**
 * Records whose data exceeds LARGE_DATA_BYTES, by version: a pull finds the next one with one
 * probe of this (almost always empty) partial index, and only pages reaching one are measured
 * before they are read (spec §4.3 pages, bounded in bytes: see page-bytes.ts).
 */
export class Migration20261124050000PullPageBytes extends Migration {
  override name = 'Migration20261124050000PullPageBytes';

  override up(): void {
    this.addSql(
      `create index \`observations_large_data_index\` on \`observations\` (\`version\`) where octet_length(\`data\`) > ${LARGE_DATA_BYTES}`,
    );
  }

  override down(): void {
    this.addSql('drop index `observations_large_data_index`');
  }
}
