import type Database from 'better-sqlite3';
import { LARGE_DATA_BYTES, lastVersionWithin, PULL_PAGE_MAX_BYTES, smallRecordsFit } from './page-bytes.ts';
import type { PullPage, PullQuery } from './sync.store.ts';

/** `,"column":"value"`, or nothing (NULL, which concat skips) when the column is null. */
const optionalString = (column: string) =>
  `iif(${column} is null, null, ',"${column}":' || json_quote(${column}))`;
/**
 * A pulled record's JSON, written by SQLite around the stored `data` text: byte for byte what
 * `observationJson` writes (json_quote escapes the valid UTF-8 text SQLite holds exactly as
 * JSON.stringify does). One concat() per record, so SQLite builds each record's text once.
 */
const RECORD_JSON = `concat('{"observation_id":', json_quote(observation_id), ',"form_type":', json_quote(form_type), ${optionalString('form_version')}, ',"data":', data, ${optionalString('created_at')}, ${optionalString('updated_at')}, ',"synced_at":', json_quote(synced_at), ',"deleted":', iif(deleted, 'true', 'false'), ',"version":', version, ',"geolocation":' || geolocation, ',"hash":"', hash, '","last_modified_by":', json_quote(last_modified_by), ',"origin_client_id":', json_quote(origin_client_id), '}')`;

/** A page as one row: its record count, versions (comma-separated) and records (comma-separated JSON, as bytes). */
type PageAggregate = [count: number, versions: string | null, json: Buffer | null];

interface PageStatements {
  /** Parameters: after version, before version (exclusive), [form types], limit. */
  page: Database.Statement;
  /** The same page with the order stated inside the aggregate (see #statementsFor). */
  sortedPage: Database.Statement;
  more: Database.Statement;
  /** [version, data bytes] of the records a page could hold. */
  sizes: Database.Statement;
  /** The version of the next large record (see page-bytes.ts). */
  nextLarge: Database.Statement;
}

/** No upper bound on a page's versions. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;
const EMPTY: PageAggregate = [0, null, null];

/** Whether comma-separated non-negative integers (as SQLite writes versions) are strictly ascending. */
export function ascending(versions: string): boolean {
  // A character loop: a page has up to 500 versions, and splitting them into strings costs more.
  let previous = -1;
  let current = 0;
  for (let i = 0; i < versions.length; i++) {
    const c = versions.charCodeAt(i);
    if (c === 0x2c) {
      if (current <= previous) return false;
      previous = current;
      current = 0;
    } else {
      current = current * 10 + (c - 0x30);
    }
  }
  return current > previous;
}

/**
 * A list of form types as one JSON parameter: one statement per query shape however many types a
 * client names (a placeholder each would prepare a statement per list length, and fail past
 * SQLite's limit on bound variables).
 */
export const FORM_TYPE_IN_LIST = 'form_type in (select value from json_each(?))';

/**
 * The version of the next record over LARGE_DATA_BYTES: the same condition as the partial index
 * observations_large_data_index, which answers it (a list of types is checked on the large
 * records it lists, not looked up in the type index).
 */
export const nextLargeSql = (byType: boolean) =>
  `select version from observations where octet_length(data) > ${LARGE_DATA_BYTES} and version > ?${byType ? ` and +${FORM_TYPE_IN_LIST}` : ''} order by version limit 1`;

/** Reads pull pages: each page, whether more follow, and the change counter from one read transaction (one snapshot). */
export class SqlitePageReader {
  readonly #db: Database.Database;
  readonly #counter: Database.Statement;
  readonly #statements = new Map<boolean, PageStatements>();

  readonly #inOrder: (versions: string) => boolean;
  readonly #maxBytes: number;

  /**
   * `inOrder` checks a page's aggregated versions (tests replace it to take the fallback path);
   * `maxBytes` bounds a page (see page-bytes.ts; tests make it small).
   */
  constructor(
    db: Database.Database,
    {
      inOrder = ascending,
      maxBytes = PULL_PAGE_MAX_BYTES,
    }: { inOrder?: (versions: string) => boolean; maxBytes?: number } = {},
  ) {
    this.#db = db;
    this.#inOrder = inOrder;
    this.#maxBytes = maxBytes;
    // The repository's generation sits in the counter's row: one read for the three.
    this.#counter = db
      .prepare('select value, generation, purged_through from sync_counter where id = 1')
      .raw();
  }

  /** Synchronous: call it only when no transaction is open on the connection. */
  read(query: PullQuery): PullPage {
    const filter = query.formTypes && query.formTypes.length > 0 ? query.formTypes : null;
    const statements = this.#statementsFor(filter !== null);
    const params = filter ? [query.afterVersion, JSON.stringify(filter)] : [query.afterVersion];
    const readPage = (before: number): PageAggregate => {
      const bounded = [query.afterVersion, before, ...params.slice(1), query.limit];
      const page = statements.page.get(...bounded) as PageAggregate;
      return page[0] > 0 && !this.#inOrder(page[1]!)
        ? (statements.sortedPage.get(...bounded) as PageAggregate)
        : page;
    };
    const read = this.#db.transaction((): PullPage => {
      const [currentVersion, generation, purgedThrough] = this.#counter.get() as [number, number, number];
      // The records before the next large one fit in the byte budget: they are read at once. A page
      // that would reach a large one is measured first and cut to the budget. (With a budget too
      // small for `limit` records of any size, every record counts as large.)
      const large = smallRecordsFit(query.limit, this.#maxBytes)
        ? (statements.nextLarge.get(...params) as number | undefined)
        : query.afterVersion + 1;
      let [count, versions, json] = large === query.afterVersion + 1 ? EMPTY : readPage(large ?? UNBOUNDED);
      if (count === 0 && large !== undefined) {
        const sizes = statements.sizes.all(...params, query.limit) as [number, number][];
        if (sizes.length > 0)
          [count, versions, json] = readPage(lastVersionWithin(sizes, this.#maxBytes) + 1);
      }
      const lastVersion = count > 0 ? Number(versions!.slice(versions!.lastIndexOf(',') + 1)) : undefined;
      const hasMore = lastVersion !== undefined && statements.more.get(lastVersion, ...params.slice(1)) === 1;
      return {
        recordsJson: json ?? Buffer.alloc(0),
        count,
        lastVersion,
        currentVersion,
        hasMore,
        generation,
        purgedThrough,
      };
    });
    return read.deferred();
  }

  /**
   * The page is joined into one buffer by SQLite (group_concat over the ordered, limited rows), so
   * a page crosses into JavaScript as one allocation instead of a few strings per record. SQLite
   * feeds an aggregate the rows of such a subquery in its order, though it does not promise to:
   * the versions, aggregated in the same pass, are checked to be ascending, and should they not be,
   * the page is read again with the order inside the aggregate (which SQLite keeps by sorting the
   * page once more, about twice the cost).
   */
  #statementsFor(byType: boolean): PageStatements {
    let statements = this.#statements.get(byType);
    if (!statements) {
      const typeFilter = byType ? ` and ${FORM_TYPE_IN_LIST}` : '';
      const page = (order: string) =>
        this.#db
          .prepare(
            `select count(*), group_concat(version, ','${order}), cast(group_concat(record, ','${order}) as blob) from (select version, ${RECORD_JSON} as record from observations where version > ? and version < ?${typeFilter} order by version limit ?)`,
          )
          .raw();
      statements = {
        page: page(''),
        sortedPage: page(' order by version'),
        more: this.#db
          .prepare(`select exists(select 1 from observations where version > ?${typeFilter})`)
          .pluck(),
        sizes: this.#db
          .prepare(
            `select version, octet_length(data) from observations where version > ?${typeFilter} order by version limit ?`,
          )
          .raw(),
        nextLarge: this.#db.prepare(nextLargeSql(byType)).pluck(),
      };
      this.#statements.set(byType, statements);
    }
    return statements;
  }
}
