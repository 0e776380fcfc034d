import type { Response } from 'express';
import type { Logger } from 'pino';

/**
 * A streamed answer failed after its status went out, so no problem answer can follow. When the
 * client went away it is the usual end of an abandoned download, not a server fault; otherwise the
 * connection is cut, so the client sees a broken body (a broken ZIP, unparsable JSON), never a
 * short one it could take for whole.
 */
export function endFailedStream(res: Response, err: unknown, logger: Logger, what: string): void {
  if (res.destroyed) {
    logger.info({ err }, `${what} abandoned by the client`);
    return;
  }
  logger.error({ err }, `${what} failed mid-stream`);
  res.destroy(err as Error);
}
