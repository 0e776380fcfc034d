import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { EntityManager, MikroORM } from '@mikro-orm/core';
import {
  checkCoreFields,
  checkFormRemoval,
  checkLayout,
  checkRenderers,
  checkSchemaCompiles,
  createSchemaCompiler,
  parseJsonObject,
  rendererReferences,
  unsafeNameProblem,
} from '@synk/bundle-rules';
import type { components } from '@synk/contract';
import { parseJson } from '@synk/json';
import type { ValidateFunction } from 'ajv';
import mime from 'mime-types';
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import { withLock } from '../../db/locks.ts';
import { type HttpProblem, Invalid, NotFound, PayloadTooLarge, type ProblemItem } from '../../http/errors.ts';
import {
  BadEntry,
  EntryTooLarge,
  extractEntry,
  NotAZip,
  readZipDirectory,
  TooManyEntries,
  writeZip,
  type ZipEntry,
} from '../../lib/zip.ts';
import type { FormSchemas } from '../sync/sync.service.ts';
import { AppBundleState, AppBundleVersion } from './bundle.entity.ts';
import { diffBundles, type FormDefinition } from './bundle-diff.ts';
import { snapshotVersion, VersionGone, type VersionSnapshot } from './version-snapshot.ts';

type Schemas = components['schemas'];
export type BundleManifest = Schemas['AppBundleManifest'];

/** A single entry may inflate at most this many times its compressed size (beyond 1 MiB). */
const MAX_RATIO = 200;
const JSON_FILE_LIMIT = 5 * 1024 * 1024;

export interface BundlesServiceDeps {
  orm: MikroORM;
  config: Config;
  clock: () => Date;
  /** Told when a stored form's schema no longer compiles (its records then go unchecked). */
  logger?: Pick<Logger, 'warn'>;
}

export const formatVersion = (n: number) => String(n).padStart(4, '0');

/** Bundle file paths from clients: relative, forward slashes, no traversal. */
export function checkBundlePath(filePath: string): void {
  const problem = unsafeNameProblem(filePath);
  if (problem)
    throw Invalid(`Invalid bundle path: it ${problem}`, [{ path: '/path/path', message: problem }]);
}

/** A name as case- and normalization-insensitive file systems (macOS, iOS, Windows) compare it. */
const fold = (name: string) => name.replace(/\/$/, '').normalize('NFC').toLowerCase();

/**
 * Entries whose path runs through a name the archive also holds as a file (`app/x` and
 * `app/x/y`, or `app/X` and `app/x/y`, one name on macOS, iOS and Windows): they cannot both be
 * extracted there. Each is listed as a problem and returned.
 */
function entriesInsideFiles(names: string[], fileNames: string[], errors: ProblemItem[]): Set<string> {
  const files = new Map(fileNames.map((f) => [fold(f), f]));
  const clashing = new Set<string>();
  for (const name of names) {
    for (
      let slash = name.indexOf('/');
      slash !== -1 && slash < name.length - 1;
      slash = name.indexOf('/', slash + 1)
    ) {
      const parent = name.slice(0, slash);
      const file = files.get(fold(parent));
      if (file !== undefined) {
        errors.push({
          path: name,
          message:
            file === parent
              ? `is inside ${parent}, which is a file`
              : `is inside ${parent}, which differs from the file ${file} only in case or Unicode normalization (one name on macOS, iOS and Windows)`,
          code: 'duplicate_entry',
        });
        clashing.add(name);
        break;
      }
    }
  }
  return clashing;
}

function invalidBundle(errors: ProblemItem[]): HttpProblem {
  return Invalid(
    `The bundle has ${errors.length} problem${errors.length === 1 ? '' : 's'}`,
    errors,
    'invalid_bundle',
  );
}

/** The manifest when no version is active: no files, a fixed time and the hash of no files. */
const EMPTY_MANIFEST: BundleManifest = Object.freeze({
  files: [],
  version: '',
  generatedAt: '1970-01-01T00:00:00.000Z',
  hash: createHash('sha256').digest('hex'),
});

export class BundlesService implements FormSchemas {
  readonly #deps: BundlesServiceDeps;
  readonly #root: string;
  readonly #schemas = createSchemaCompiler();
  /** Compiled form validators of the active version (per process; rebuilt when the version changes). */
  #validators: { version: string; forms: Map<string, ValidateFunction | null> } | undefined;
  #activeCache: { version: string | null; at: number } | undefined;

  constructor(deps: BundlesServiceDeps) {
    this.#deps = deps;
    this.#root = deps.config.appBundlePath;
  }

  get #em(): EntityManager {
    return this.#deps.orm.em.fork();
  }

  #versionDir(version: string): string {
    return path.join(this.#root, 'versions', version);
  }

  async versions(): Promise<{ versions: string[]; current?: string }> {
    const rows = await this.#em.find(AppBundleVersion, {}, { fields: ['version'] });
    const versions = rows.map((r) => r.version).sort((a, b) => Number(b) - Number(a));
    const active = await this.active();
    return { versions, ...(active ? { current: active } : {}) };
  }

  async active(): Promise<string | null> {
    const state = await this.#em.findOne(AppBundleState, { id: 1 });
    const version = state?.activeVersion ?? null;
    this.#activeCache = { version, at: performance.now() };
    return version;
  }

  async #latest(): Promise<string | null> {
    return (await this.versions()).versions[0] ?? null;
  }

  /**
   * The manifest of the active version, or of the latest with `preview`. With none, an empty
   * manifest (no files, version ""), as Synkronus 1.0.3 answers a server without a bundle: apps
   * poll it before an administrator has activated one, and take anything but 200/304 as an error.
   */
  async manifest(preview: boolean): Promise<BundleManifest> {
    const version = preview ? await this.#latest() : await this.active();
    return version ? this.#manifestOf(version) : EMPTY_MANIFEST;
  }

  async #manifestOf(version: string): Promise<BundleManifest> {
    const row = await this.#em.findOne(AppBundleVersion, { version });
    if (!row) throw NotFound(`No app bundle version ${version}`);
    return JSON.parse(row.manifest) as BundleManifest;
  }

  /** One file of the active (or, with `preview`, the latest) version. */
  async file(
    filePath: string,
    preview: boolean,
  ): Promise<{ file: string; entry: Schemas['AppBundleFile']; version: string }> {
    checkBundlePath(filePath);
    const manifest = await this.manifest(preview);
    if (manifest === EMPTY_MANIFEST)
      throw NotFound(preview ? 'No app bundle has been pushed yet' : 'No app bundle is active yet');
    const entry = manifest.files.find((f) => f.path === filePath);
    if (!entry) throw NotFound(`No file ${filePath} in app bundle version ${manifest.version}`);
    return {
      file: path.join(this.#versionDir(manifest.version), filePath),
      entry,
      version: manifest.version,
    };
  }

  /** The manifest of `version`, or of the active version; 404 when there is no such version. */
  async versionManifest(version: string | undefined): Promise<BundleManifest> {
    const chosen = version ?? (await this.active());
    if (!chosen) throw NotFound('No app bundle is active yet');
    return this.#manifestOf(chosen);
  }

  /**
   * Holds the files of a version for a download of all of them (see snapshotVersion), so a prune
   * meanwhile cannot cut it; 404 when the version was pruned since its manifest was read. Call
   * before answering, and `release` the snapshot when done.
   */
  async openVersion(manifest: BundleManifest): Promise<VersionSnapshot> {
    try {
      return await snapshotVersion(
        this.#versionDir(manifest.version),
        manifest.files.map((f) => f.path),
        path.join(this.#root, '.tmp'),
      );
    } catch (err) {
      if (err instanceof VersionGone)
        throw NotFound(`App bundle version ${manifest.version} was just removed`);
      throw err;
    }
  }

  /** Streams the files of a version, held by `openVersion`, as a ZIP. */
  async writeZip(manifest: BundleManifest, snapshot: VersionSnapshot, output: Writable): Promise<void> {
    const modTimes = new Map(manifest.files.map((f) => [f.path, new Date(f.modTime)]));
    await writeZip(
      snapshot.files.map((f) => ({ ...f, modifiedAt: modTimes.get(f.name) })),
      output,
    );
  }

  /** Atomic: one row update flips the pointer; the version's files were complete before it existed. */
  async switchTo(version: string): Promise<void> {
    await withLock('bundles', this.#em, this.#deps.config.database.kind, async (em) => {
      if (!(await em.findOne(AppBundleVersion, { version })))
        throw NotFound(`No app bundle version ${version}`);
      await em.nativeUpdate(AppBundleState, { id: 1 }, { activeVersion: version });
    });
    this.#activeCache = undefined;
  }

  async changes(current: string | undefined, target: string | undefined): Promise<Schemas['ChangeLog']> {
    const { versions } = await this.versions();
    const a = current ?? versions[0];
    if (!a || !versions.includes(a))
      throw NotFound(current ? `No app bundle version ${current}` : 'No app bundle has been pushed yet');
    // With no version before `a` to compare with, `a` with itself: no changes (as 1.0.3 answers).
    const b = target ?? versions[versions.indexOf(a) + 1] ?? a;
    if (!versions.includes(b)) throw NotFound(`No app bundle version ${target}`);
    return diffBundles(
      { version: a, forms: await this.#forms(a) },
      { version: b, forms: await this.#forms(b) },
    );
  }

  async #forms(version: string): Promise<Map<string, FormDefinition>> {
    const manifest = await this.#manifestOf(version);
    const forms = new Map<string, FormDefinition>();
    for (const f of manifest.files) {
      const match = /^forms\/([^/]+)\/schema\.json$/.exec(f.path);
      if (!match) continue;
      const dir = path.join(this.#versionDir(version), 'forms', match[1]!);
      forms.set(match[1]!, {
        schema: parseJson(await readFile(path.join(dir, 'schema.json'), 'utf8')) as Record<string, unknown>,
        ui: parseJson(await readFile(path.join(dir, 'ui.json'), 'utf8')) as Record<string, unknown>,
      });
    }
    return forms;
  }

  /**
   * Validates the uploaded ZIP completely (every problem reported at once), extracts it to a
   * staging folder, then, under the bundles lock, gives it the next version number, moves it into
   * place and records it. Nothing is left behind when any step fails.
   */
  /**
   * `retireForms`: forms of the active version this bundle leaves out may go with their core fields
   * (their records migrated to a new form, as the bundle guide says); otherwise that is refused.
   */
  async push(
    zipFile: string,
    activate: boolean,
    pushedBy: string,
    retireForms = false,
  ): Promise<BundleManifest> {
    const { limits } = this.#deps.config;
    let entries: ZipEntry[];
    try {
      entries = await readZipDirectory(zipFile, limits.bundleEntries);
    } catch (err) {
      if (err instanceof NotAZip)
        throw Invalid(
          'The bundle is not a ZIP file',
          [{ path: 'bundle', message: 'is not a ZIP archive' }],
          'invalid_bundle',
        );
      if (err instanceof TooManyEntries)
        throw PayloadTooLarge(
          `The bundle has ${err.count} entries; at most ${limits.bundleEntries} are allowed`,
        );
      throw err;
    }
    const declaredTotal = entries.reduce((sum, e) => sum + e.uncompressedSize, 0);
    if (declaredTotal > limits.bundleUncompressedBytes) {
      throw PayloadTooLarge(
        `The bundle inflates to ${declaredTotal} bytes; at most ${limits.bundleUncompressedBytes} are allowed`,
      );
    }
    for (const e of entries) {
      if (e.uncompressedSize > 1024 * 1024 && e.uncompressedSize > e.compressedSize * MAX_RATIO) {
        throw PayloadTooLarge(`${e.name} is compressed more than ${MAX_RATIO}:1 (a ZIP bomb guard)`);
      }
    }

    const errors: ProblemItem[] = [];
    const seen = new Set<string>();
    /** Names as case- and normalization-insensitive file systems compare them. */
    const folded = new Map<string, string>();
    const files: ZipEntry[] = [];
    // Folder entries too: the layout allows no folder where it allows no file (`other/`).
    const names: string[] = [];
    for (const e of entries) {
      const problem = unsafeNameProblem(e.name);
      if (problem) errors.push({ path: e.name, message: `entry name ${problem}`, code: 'unsafe_entry' });
      else if (e.isSymlink)
        errors.push({ path: e.name, message: 'symbolic links are not allowed', code: 'unsafe_entry' });
      else if (seen.has(e.name.replace(/\/$/, '')))
        errors.push({ path: e.name, message: 'appears more than once', code: 'duplicate_entry' });
      else if (folded.has(fold(e.name)))
        errors.push({
          path: e.name,
          message: `differs from ${folded.get(fold(e.name))} only in case or Unicode normalization (one file on macOS, iOS and Windows)`,
          code: 'duplicate_entry',
        });
      else if (e.isDirectory) names.push(e.name);
      else if (e.name.endsWith('/'))
        errors.push({ path: e.name, message: 'is named as a folder but holds data', code: 'unsafe_entry' });
      else {
        files.push(e);
        names.push(e.name);
      }
      seen.add(e.name.replace(/\/$/, ''));
      if (!folded.has(fold(e.name))) folded.set(fold(e.name), e.name);
    }
    const clashing = entriesInsideFiles(
      names,
      files.map((f) => f.name),
      errors,
    );
    const layout = checkLayout(names, errors);

    const staging = path.join(this.#root, '.tmp', `stage-${randomUUID()}`);
    try {
      const extracted = await this.#extract(
        files.filter((f) => !clashing.has(f.name)),
        staging,
        errors,
      );
      const forms = this.#checkForms(layout, extracted.json, errors);
      const checkedAgainst = await this.active();
      const formNames = new Set(layout.forms.keys());
      await this.#checkCoreFields(checkedAgainst, forms, formNames, retireForms, errors);
      if (errors.length > 0) throw invalidBundle(errors);
      return await this.#publish(staging, extracted.files, {
        activate,
        pushedBy,
        forms,
        formNames,
        retireForms,
        checkedAgainst,
      });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  async #extract(files: ZipEntry[], staging: string, errors: ProblemItem[]) {
    const { limits } = this.#deps.config;
    const out: Schemas['AppBundleFile'][] = [];
    const json = new Map<string, string>();
    let total = 0;
    for (const entry of files) {
      const isJson = /^forms\/[^/]+\/(schema|ui)\.json$/.test(entry.name);
      const collect = isJson ? { limit: JSON_FILE_LIMIT, chunks: [] as Buffer[] } : undefined;
      const budget = Math.min(entry.uncompressedSize, limits.bundleUncompressedBytes - total);
      try {
        const { size, sha256 } = await extractEntry(entry, path.join(staging, entry.name), budget, collect);
        total += size;
        out.push({
          path: entry.name,
          size,
          hash: sha256,
          mimeType: mime.lookup(entry.name) || 'application/octet-stream',
          modTime: entry.modifiedAt.toISOString(),
        });
        if (collect) {
          if (size > JSON_FILE_LIMIT)
            errors.push({
              path: entry.name,
              message: `is larger than ${JSON_FILE_LIMIT} bytes`,
              code: 'too_large',
            });
          else json.set(entry.name, Buffer.concat(collect.chunks).toString('utf8'));
        }
      } catch (err) {
        if (err instanceof EntryTooLarge)
          throw PayloadTooLarge(`${entry.name} inflates beyond what its header declares or the limits allow`);
        // Anything else (a full disk, permissions) is the server's fault, never reported to the
        // client with the server's paths.
        if (!(err instanceof BadEntry)) throw err;
        errors.push({
          path: entry.name,
          message: `cannot be extracted: ${err.message}`,
          code: 'corrupt_entry',
        });
      }
    }
    return { files: out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), json };
  }

  #checkForms(layout: ReturnType<typeof checkLayout>, json: Map<string, string>, errors: ProblemItem[]) {
    const parsed = (file: string) => {
      const text = json.get(file);
      return text === undefined ? undefined : parseJsonObject(file, text, errors);
    };
    const forms = new Map<string, Record<string, unknown>>();
    // Each file on its own: a form missing one of its files (a layout problem) still has the
    // other's problems listed.
    for (const [form, paths] of layout.forms) {
      const schema = paths.schema === undefined ? undefined : parsed(paths.schema);
      if (paths.schema && schema) {
        checkSchemaCompiles(this.#schemas, paths.schema, schema, errors);
        checkRenderers(paths.schema, rendererReferences('schema', schema), layout.renderers, errors);
        forms.set(form, schema);
      }
      const ui = paths.ui === undefined ? undefined : parsed(paths.ui);
      if (paths.ui && ui) checkRenderers(paths.ui, rendererReferences('ui', ui), layout.renderers, errors);
    }
    return forms;
  }

  /**
   * Core fields of `forms` (the schemas that parsed) against those of the `active` version (no
   * rule when none is active); forms of the active version missing from `formNames` (every form
   * folder of the new bundle, whether its files parsed or not) are removed with their core fields.
   */
  async #checkCoreFields(
    active: string | null,
    forms: Map<string, Record<string, unknown>>,
    formNames: Set<string>,
    retireForms: boolean,
    errors: ProblemItem[],
  ): Promise<void> {
    if (!active) return;
    const previous = await this.#forms(active);
    for (const [form, before] of previous) {
      if (!formNames.has(form) && !retireForms) checkFormRemoval(form, before.schema, errors);
    }
    for (const [form, schema] of forms) {
      const before = previous.get(form);
      if (before) checkCoreFields(form, before.schema, schema, errors);
    }
  }

  async #publish(
    staging: string,
    files: Schemas['AppBundleFile'][],
    push: {
      activate: boolean;
      pushedBy: string;
      forms: Map<string, Record<string, unknown>>;
      formNames: Set<string>;
      retireForms: boolean;
      /** The version active when the core fields were checked. */
      checkedAgainst: string | null;
    },
  ): Promise<BundleManifest> {
    const { activate, pushedBy } = push;
    const now = this.#deps.clock();
    const manifest = await withLock('bundles', this.#em, this.#deps.config.database.kind, async (em) => {
      // Another push may have activated a version since the check (concurrent pushes are checked
      // outside the lock): the core fields must hold against the version active now.
      const active = (await em.findOne(AppBundleState, { id: 1 }))?.activeVersion ?? null;
      if (active !== push.checkedAgainst) {
        const errors: ProblemItem[] = [];
        await this.#checkCoreFields(active, push.forms, push.formNames, push.retireForms, errors);
        if (errors.length > 0) throw invalidBundle(errors);
      }
      const rows = await em.find(AppBundleVersion, {}, { fields: ['version'] });
      const next = formatVersion(rows.reduce((max, r) => Math.max(max, Number(r.version)), 0) + 1);
      const hash = createHash('sha256');
      for (const f of files) hash.update(`${f.path}\n${f.hash}\n${f.size}\n`);
      const built: BundleManifest = {
        files,
        version: next,
        generatedAt: now.toISOString(),
        hash: hash.digest('hex'),
      };
      await rm(this.#versionDir(next), { recursive: true, force: true }); // leftovers of a crashed push
      await mkdir(path.dirname(this.#versionDir(next)), { recursive: true });
      await rename(staging, this.#versionDir(next));
      em.create(AppBundleVersion, {
        version: next,
        createdAt: now,
        pushedBy,
        manifest: JSON.stringify(built),
      });
      await em.flush();
      if (activate) await em.nativeUpdate(AppBundleState, { id: 1 }, { activeVersion: next });
      return built;
    });
    this.#activeCache = undefined;
    await this.#prune();
    return manifest;
  }

  /** Keeps the newest MAX_VERSIONS_KEPT versions, and always the active one. */
  async #prune(): Promise<void> {
    const doomed = await withLock('bundles', this.#em, this.#deps.config.database.kind, async (em) => {
      const active = (await em.findOne(AppBundleState, { id: 1 }))?.activeVersion ?? null;
      const versions = (await em.find(AppBundleVersion, {}, { fields: ['version'] }))
        .map((r) => r.version)
        .sort((a, b) => Number(b) - Number(a));
      const remove = versions.slice(this.#deps.config.maxVersionsKept).filter((v) => v !== active);
      if (remove.length > 0) await em.nativeDelete(AppBundleVersion, { version: { $in: remove } });
      return remove;
    });
    for (const version of doomed) await rm(this.#versionDir(version), { recursive: true, force: true });
  }

  /** FormSchemas for record sync: validates `data` against the active version's form schema. */
  check(
    formType: string,
    data: Record<string, unknown>,
  ):
    | { status: 'no-bundle' | 'unknown-form' | 'valid' }
    | { status: 'invalid'; errors: { path: string; message: string }[] } {
    const validators = this.#validators;
    if (!validators) return { status: 'no-bundle' };
    const validate = validators.forms.get(formType);
    if (validate === undefined) return { status: 'unknown-form' };
    if (validate === null || validate(data)) return { status: 'valid' };
    return {
      status: 'invalid',
      errors: (validate.errors ?? []).map((e) => ({
        path: `/data${e.instancePath}`,
        message: e.message ?? 'is invalid',
      })),
    };
  }

  async refresh(): Promise<void> {
    await this.refreshFormValidators();
  }

  /**
   * Makes `check` current: compiles the active version's form schemas when the active version
   * changed. Called before each push is validated; the active version is re-read from the
   * database at most every REVOCATION_CACHE_MS, so other processes' switches are seen too.
   */
  async refreshFormValidators(): Promise<void> {
    const fresh =
      this.#activeCache &&
      performance.now() - this.#activeCache.at < this.#deps.config.auth.revocationCacheMs;
    const active = fresh ? this.#activeCache!.version : await this.active();
    if (!active) {
      this.#validators = undefined;
      return;
    }
    if (this.#validators?.version === active) return;
    const forms = new Map<string, ValidateFunction | null>();
    for (const [name, form] of await this.#forms(active)) {
      try {
        forms.set(name, this.#schemas.compile(form.schema));
      } catch (err) {
        // Checked when pushed, so only a version stored by an earlier server can get here.
        this.#deps.logger?.warn(
          { err, version: active, form: name },
          'a form schema of the active app bundle does not compile: its records are stored unchecked',
        );
        forms.set(name, null);
      }
    }
    this.#validators = { version: active, forms };
  }
}
