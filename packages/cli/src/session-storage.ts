import { CorruptValueError, FileStorage } from '@synk/sdk/node';
import { CliError } from './errors.ts';

/**
 * The SDK's file storage for a profile's session, whose damaged files (edited by hand, say) are
 * named as what they are, as a CliError: the SDK would take a damaged session for none (and the
 * command would go on without one, failing as not logged in), and a bare SyntaxError reads as a
 * server that answered with something other than JSON, sending the administrator looking at it.
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
      if (!CorruptValueError.is(err)) throw err;
      const reason = ((err as Error).cause ?? err) as Error; // the parser's words
      throw new CliError(
        `the session kept in ${this.#dir} is damaged (${key}: ${reason.message}): log in again, or remove that directory`,
      );
    }
  }
}
