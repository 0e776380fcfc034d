import { Migration } from '@mikro-orm/migrations';

/**
 * Records whose data exceeds LARGE_DATA_BYTES, by version: a pull finds the next one with one
 * probe of this (almost always empty) partial index, and only pages reaching one are measured
 * before they are read (spec §4.3 pages, bounded in bytes: see page-bytes.ts). The threshold is
 * written out, as a migration must not change once applied: it is LARGE_DATA_BYTES, and changing
 * that needs a new migration (a test checks that the pull's probe is answered by this index).
 */
export class Migration20261124050000PullPageBytes extends Migration {
  override name = 'Migration20261124050000PullPageBytes';

  override up(): void {
    this.addSql(
      `create index \`observations_large_data_index\` on \`observations\` (\`version\`) where octet_length(\`data\`) > 16384`,
    );
  }

  override down(): void {
    this.addSql('drop index `observations_large_data_index`');
  }
}
