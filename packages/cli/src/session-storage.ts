import { FileStorage } from '@synk/sdk/node';
import { CliError } from './errors.ts';

/**
 * The SDK's file storage for a profile's session, whose damaged files (edited by hand, say) are
 * named as what they are: otherwise their SyntaxError reads as a server that answered with
 * something other than JSON, and sends the administrator looking at the server.
 */
export class SessionStorage extends FileStorage {
  readonly #dir: string;

  constructor(dir: string) {
    super(dir);
    this.#dir = dir;
  }

  override async get<T>(key: string): Promise<T | undefined> {
    try {
      return await super.get<T>(key);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new CliError(
        `the session kept in ${this.#dir} is damaged (${key}: ${err.message}): log in again, or remove that directory`,
      );
    }
  }
}
