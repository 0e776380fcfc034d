import os from 'node:os';
import type { AppContext } from '../../app-context.ts';
import { describeDatabase } from '../../db/orm.ts';
import { API_VERSIONS, CURRENT_API_VERSION } from '../../http/api-version.ts';
import { type Handler, sendJson } from '../../http/routes.ts';
import { renderDocsPage } from './docs-page.ts';

export function metaHandlers(
  ctx: AppContext,
): Record<'getVersion' | 'getApiVersions' | 'getOpenApiSpec' | 'getApiDocs', Handler> {
  const docsPage = renderDocsPage(ctx.spec);
  return {
    async getVersion(_req, res) {
      const database = await describeDatabase(ctx.orm, ctx.config.database);
      sendJson(res, 'getVersion', 200, {
        server: { version: ctx.build.version },
        database,
        system: { os: os.platform(), architecture: os.arch(), cpus: os.availableParallelism() },
        build: {
          runtime: `node ${process.version}`,
          commit: ctx.build.commit,
          build_time: ctx.build.buildTime,
        },
      });
    },
    getApiVersions(_req, res) {
      sendJson(res, 'getApiVersions', 200, {
        versions: [...API_VERSIONS].reverse(),
        current: CURRENT_API_VERSION,
      });
    },
    getOpenApiSpec(_req, res) {
      res.status(200).type('application/yaml; charset=utf-8').send(ctx.spec.text);
    },
    getApiDocs(_req, res) {
      res.status(200).type('text/html; charset=utf-8').send(docsPage);
    },
  };
}
