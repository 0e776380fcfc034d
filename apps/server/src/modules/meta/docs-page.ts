import { listOperations, type OpenApiDocument, type OpenApiOperation } from '../../http/openapi.ts';

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

const refName = (ref: string | undefined) => (ref ? ref.split('/').at(-1)! : '');

function describeAccess(op: OpenApiOperation): string {
  if (op.security && op.security.length === 0) return 'public';
  return `${op['x-min-role'] ?? 'read-only'} or higher`;
}

/**
 * A self-contained, human-readable page of every operation in openapi.yaml: no scripts, no assets
 * from elsewhere, so it works on an offline deployment. The machine-readable contract is /openapi.yaml.
 */
export function renderDocsPage(doc: OpenApiDocument): string {
  const operations = listOperations(doc);
  const byTag = new Map<string, typeof operations>();
  for (const entry of operations) {
    const tag = entry.operation.tags?.[0] ?? 'other';
    byTag.set(tag, [...(byTag.get(tag) ?? []), entry]);
  }
  const sections = [...byTag]
    .map(([tag, entries]) => {
      const items = entries
        .map(({ method, path, operation: op }) => {
          const params = (op.parameters ?? [])
            .map((p) => (p.$ref ? refName(p.$ref) : `${p.name} (${p.in}${p.required ? ', required' : ''})`))
            .join(', ');
          const bodies = Object.entries(op.requestBody?.content ?? {})
            .map(([type, media]) => `${type}${media.schema?.$ref ? ` → ${refName(media.schema.$ref)}` : ''}`)
            .join('; ');
          const responses = Object.entries(op.responses ?? {})
            .map(
              ([status, r]) =>
                `${status}${r.$ref ? ` (${refName(r.$ref)})` : r.description ? ` ${r.description}` : ''}`,
            )
            .join(' · ');
          return `<section class="op" id="${escapeHtml(op.operationId)}">
  <h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code>${op.deprecated ? ' <em>deprecated</em>' : ''}</h3>
  <p><strong>${escapeHtml(op.summary ?? op.operationId)}</strong> — <code>${escapeHtml(op.operationId)}</code>, access: ${escapeHtml(describeAccess(op))}</p>
  ${op.description ? `<p class="d">${escapeHtml(op.description)}</p>` : ''}
  ${params ? `<p><b>Parameters:</b> ${escapeHtml(params)}</p>` : ''}
  ${bodies ? `<p><b>Request body:</b> ${escapeHtml(bodies)}</p>` : ''}
  <p><b>Responses:</b> ${escapeHtml(responses)}</p>
</section>`;
        })
        .join('\n');
      return `<h2 id="tag-${escapeHtml(tag)}">${escapeHtml(tag)}</h2>\n${items}`;
    })
    .join('\n');
  const toc = [...byTag.keys()]
    .map((t) => `<a href="#tag-${escapeHtml(t)}">${escapeHtml(t)}</a>`)
    .join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(doc.info.title)} ${escapeHtml(doc.info.version)} — API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}.op{border-top:1px solid #ddd;padding:.5rem 0}
.m{display:inline-block;min-width:4.5em;font:bold 12px monospace;color:#fff;padding:2px 6px;border-radius:3px;background:#666}
.get{background:#2f6fbd}.post{background:#2e8b57}.put{background:#b8860b}.patch{background:#8a5cb8}.delete{background:#b03a2e}.head{background:#555}
.d{white-space:pre-line;color:#333}
</style></head><body>
<h1>${escapeHtml(doc.info.title)} <small>${escapeHtml(doc.info.version)}</small></h1>
<p class="d">${escapeHtml(doc.info.description ?? '')}</p>
<p>Machine-readable contract: <a href="openapi.yaml">openapi.yaml</a>. Sections: ${toc}</p>
${sections}
</body></html>`;
}
