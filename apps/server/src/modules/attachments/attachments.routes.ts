import { pending, type Route } from '../../http/routes.ts';

// Implemented by the attachments issue; until then every operation answers 501 problem+json.
export function attachmentsRoutes(): Route[] {
  return [
    pending('getAttachmentManifest', 'post', '/attachments/manifest'),
    pending('uploadAttachment', 'put', '/attachments/{attachment_id}'),
    pending('downloadAttachment', 'get', '/attachments/{attachment_id}'),
    pending('checkAttachmentExists', 'head', '/attachments/{attachment_id}'),
    pending('deleteAttachment', 'delete', '/attachments/{attachment_id}'),
  ];
}
