import type { AppContext } from '../../app-context.ts';
import type { Route } from '../../http/routes.ts';
import { attachmentsHandlers } from './attachments.handlers.ts';

export function attachmentsRoutes(ctx: AppContext): Route[] {
  const h = attachmentsHandlers(ctx);
  const path = '/attachments/{attachment_id}';
  return [
    {
      operationId: 'getAttachmentManifest',
      method: 'post',
      path: '/attachments/manifest',
      handler: h.getAttachmentManifest,
    },
    { operationId: 'uploadAttachment', method: 'put', path, handler: h.uploadAttachment },
    { operationId: 'downloadAttachment', method: 'get', path, handler: h.downloadAttachment },
    { operationId: 'checkAttachmentExists', method: 'head', path, handler: h.checkAttachmentExists },
    { operationId: 'deleteAttachment', method: 'delete', path, handler: h.deleteAttachment },
  ];
}
