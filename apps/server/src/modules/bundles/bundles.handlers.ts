import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RequestHandler } from 'express';
import type { AppContext } from '../../app-context.ts';
import { principalOf } from '../../http/authenticate.ts';
import { answerIfNotModified, rangeOrUnsatisfiable } from '../../http/conditional.ts';
import { HttpProblem, PayloadTooLarge } from '../../http/errors.ts';
import { type MultipartUpload, takeUpload } from '../../http/multipart.ts';
import { type Handler, sendJson } from '../../http/routes.ts';
import { StreamTooLarge, streamToFile } from '../../lib/files.ts';
import { setUntrustedContentHeaders } from '../../lib/untrusted-content.ts';

const DOWNLOAD_PREFIX = '/app-bundle/download/';

/**
 * `GET /app-bundle/download/app/index.html` (plain nested segments) is the same request as
 * `…/download/app%2Findex.html`: the rest of the path is folded into one encoded segment before
 * routing, so the contract's single `{path}` parameter receives `app/index.html` either way.
 */
export const foldBundleDownloadPath: RequestHandler = (req, _res, next) => {
  if (req.path.startsWith(DOWNLOAD_PREFIX)) {
    const rest = req.path.slice(DOWNLOAD_PREFIX.length);
    if (rest.includes('/')) {
      const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
      req.url = `${DOWNLOAD_PREFIX}${rest.split('/').join('%2F')}${query}`;
      // The validator matches on originalUrl; it must see the folded form too.
      req.originalUrl = req.url;
    }
  }
  next();
};

/** Streams the `bundle` part of `POST /app-bundle/push` to a temporary file, within the ZIP size limit. */
export function bundleUpload(ctx: AppContext): MultipartUpload<string> {
  return {
    field: 'bundle',
    async sink(file) {
      const dir = path.join(ctx.config.appBundlePath, '.tmp');
      await mkdir(dir, { recursive: true });
      const target = path.join(dir, `upload-${randomUUID()}.zip`);
      try {
        await streamToFile(file, target, ctx.config.limits.bundleZipBytes);
      } catch (err) {
        if (err instanceof StreamTooLarge)
          throw PayloadTooLarge(`App bundles are limited to ${err.limit} bytes`);
        throw err;
      }
      return target;
    },
    discard: (target) => rm(target, { force: true }),
  };
}

type BundleOperation =
  | 'pushAppBundle'
  | 'getAppBundleVersions'
  | 'switchAppBundleVersion'
  | 'getAppBundleManifest'
  | 'downloadAppBundleFile'
  | 'downloadAppBundleZip'
  | 'getAppBundleChanges';

const truthy = (value: unknown) => value === true || value === 'true' || value === '1';

export function bundlesHandlers(ctx: AppContext): Record<BundleOperation, Handler> {
  const { bundles } = ctx.services;
  return {
    async pushAppBundle(req, res) {
      const zipFile = takeUpload<string>(res);
      if (!zipFile)
        throw new HttpProblem(400, 'validation_failed', 'The multipart field "bundle" is required');
      try {
        const field = (name: string) =>
          truthy(req.query[name]) || truthy((req.body as Record<string, unknown>)[name]);
        const manifest = await bundles.push(
          zipFile,
          field('activate'),
          principalOf(res).username,
          field('retire_forms'),
        );
        sendJson(res, 'pushAppBundle', 200, { message: 'App bundle successfully pushed', manifest });
      } finally {
        await rm(zipFile, { force: true });
      }
    },
    async getAppBundleVersions(_req, res) {
      sendJson(res, 'getAppBundleVersions', 200, await bundles.versions());
    },
    async switchAppBundleVersion(req, res) {
      const version = String(req.params.version);
      await bundles.switchTo(version);
      sendJson(res, 'switchAppBundleVersion', 200, { message: `Switched to app bundle version ${version}` });
    },
    async getAppBundleManifest(req, res) {
      const preview = truthy(req.query.preview);
      const manifest = await bundles.manifest(preview);
      res.setHeader('Cache-Control', 'no-cache');
      if (preview) res.setHeader('x-is-preview', 'true');
      if (answerIfNotModified(req, res, `"${manifest.hash}"`)) return;
      sendJson(res, 'getAppBundleManifest', 200, manifest);
    },
    async downloadAppBundleFile(req, res) {
      const preview = truthy(req.query.preview);
      const { file, entry } = await bundles.file(String(req.params.path), preview);
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      if (preview) res.setHeader('x-is-preview', 'true');
      const etag = `"${entry.hash}"`;
      if (answerIfNotModified(req, res, etag)) return;
      // Ranges are read here, as for attachments (send's own parsing answers 416 to a suffix
      // longer than the file, which RFC 9110 makes the whole file); a HEAD has none.
      const range = req.method === 'GET' ? rangeOrUnsatisfiable(req, etag, entry.size, 'file') : undefined;
      res.type(entry.mimeType);
      res.setHeader('Accept-Ranges', 'bytes');
      if (range) {
        res.status(206);
        res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${entry.size}`);
      }
      await new Promise<void>((resolve, reject) => {
        res.sendFile(
          file,
          {
            etag: false,
            lastModified: false,
            cacheControl: false,
            dotfiles: 'allow',
            acceptRanges: false,
            ...(range ? { start: range.start, end: range.end } : {}),
          },
          (err) => {
            // Unsent, the problem handler answers (without this file's headers).
            if (!err || res.headersSent) return resolve();
            reject(err);
          },
        );
      });
    },
    async downloadAppBundleZip(req, res) {
      const manifest = await bundles.versionManifest(
        typeof req.query.version === 'string' ? req.query.version : undefined,
      );
      // A HEAD gets a GET's headers without the archive being built (its body would be thrown away).
      // A GET holds the version's files before the first byte: a prune meanwhile cannot cut it.
      const snapshot = req.method === 'HEAD' ? undefined : await bundles.openVersion(manifest);
      try {
        res.status(200).type('application/zip');
        res.setHeader('Content-Disposition', `attachment; filename="app-bundle-${manifest.version}.zip"`);
        // An archive to save, never a document. (The bundle's own files go without these headers:
        // apps load them as their pages and scripts.)
        setUntrustedContentHeaders(res);
        if (!snapshot) {
          res.end();
          return;
        }
        await bundles.writeZip(manifest, snapshot, res);
      } finally {
        await snapshot?.release();
      }
    },
    async getAppBundleChanges(req, res) {
      const { current, target } = req.query as { current?: string; target?: string };
      sendJson(res, 'getAppBundleChanges', 200, await bundles.changes(current, target));
    },
  };
}
