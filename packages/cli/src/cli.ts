import { ApiError, createClient, MemoryStorage, type Problem } from '@synk/sdk/node';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { legacyProfileStateDir, readConfig, serverStateDir } from './config.ts';
import { CliError } from './errors.ts';
import { SessionStorage } from './session-storage.ts';

export interface GlobalOptions {
  server?: string;
  profile?: string;
  json?: boolean;
}

export { CliError, UsageError } from './errors.ts';

/** The exit code of a command called wrongly: an unknown command or option, a missing or bad argument. */
export const USAGE_EXIT = 2;

export const VERSION = '0.1.0';

/**
 * `synk`'s own version is `-V`/`--cli-version` anywhere, and `--version` only before a command
 * (see `asksForVersion`): commander matches a program's options after the command as well, so a
 * program-level `--version` would take `app-bundle download --version 0001` for itself.
 */
export const program = new Command('synk')
  .description('Administer a synk (Synkronus 1.0.3 compatible) sync server')
  .version(VERSION, '-V, --cli-version', 'print the version of synk (so does --version before any command)')
  .addOption(new Option('--server <url>', 'server URL (overrides the profile)').env('SYNK_SERVER'))
  .option('--profile <name>', 'configuration profile to use')
  .option('--json', 'print machine-readable JSON')
  .showHelpAfterError()
  // Every command's --help lists --server, --profile and --json too: they work after any command.
  .configureHelp({ showGlobalOptions: true })
  // Usage errors reach run() (which gives them their own exit code) instead of exiting at once;
  // every command made from the program after this inherits it.
  .exitOverride();

/** The program's options that take a value: what may stand between `synk` and a leading `--version`. */
const VALUE_OPTIONS = new Set(['--server', '--profile']);

/** Whether `args` (after `node synk`) ask for synk's version: `--version` before any command. */
export function asksForVersion(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--version') return true;
    if (VALUE_OPTIONS.has(arg)) i++;
    else if (!arg.startsWith('-') || arg === '--') return false;
  }
  return false;
}

export function globals(): GlobalOptions {
  return program.opts<GlobalOptions>();
}

/**
 * A server URL as one spelling: the origin as the URL parser writes it (lower-case host, no default
 * port) and the path without trailing slashes, so `http://Host:80/` and `http://host` are one server.
 */
export function serverBaseUrl(server: string): string {
  const url = URL.parse(server);
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:')
    throw new CliError(`Not an http(s) server URL: ${server}`);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * Moves a session kept by a version without per-server sessions (one per profile) to the profile's
 * own server, where those versions sent it unless told otherwise, so an upgrade does not log anyone
 * out or leave a live refresh token behind on disk. The key names are that version's, fixed.
 */
async function adoptLegacySession(profileName: string, storage: SessionStorage): Promise<void> {
  const legacy = new SessionStorage(legacyProfileStateDir(profileName));
  for (const key of ['auth:tokens', 'client:id']) {
    const value = await legacy.get(key);
    if (value === undefined) continue;
    if ((await storage.get(key)) === undefined) await storage.set(key, value);
    await legacy.delete(key);
  }
}

/** `timeoutMs`: how long a request may wait for the server's next bytes (the SDK's default is 30 s). */
export async function context(options: { timeoutMs?: number } = {}) {
  const config = await readConfig();
  const profileName = globals().profile ?? config.current;
  const profile = config.profiles[profileName];
  const server = globals().server ?? profile?.server;
  if (!server)
    throw new CliError(`No server configured: run "synk config init --server <url>" or pass --server`);
  const baseUrl = serverBaseUrl(server);
  const storage = new SessionStorage(serverStateDir(profileName, baseUrl));
  if (profile?.server !== undefined && serverBaseUrl(profile.server) === baseUrl)
    await adoptLegacySession(profileName, storage);
  const client = createClient({
    baseUrl,
    storage,
    // Only the session and the client id are kept between commands. The outbox (and the pull
    // cursors) live as long as one command: a push reports on exactly its file's records, leaves
    // nothing queued for a later command to send, and two commands running side by side never share
    // a queue (the SDK does not coordinate processes).
    stateStorage: new MemoryStorage({ exactNumbers: true }),
    // Records pass through as they are: an integer too long for a double keeps its digits.
    exactNumbers: true,
    retry: { retries: 2 },
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
  return { config, profileName, profile, baseUrl, client };
}

/** Prints `value` as JSON with --json, otherwise as the given human text. */
export function output(value: unknown, human?: string | (() => string)): void {
  if (globals().json || human === undefined) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else process.stdout.write(`${typeof human === 'function' ? human() : human}\n`);
}

/** A warning on stderr (as `{"warning": …}` with --json): what the command did not do as asked. */
export function warn(message: string): void {
  process.stderr.write(
    globals().json ? `${JSON.stringify({ warning: message })}\n` : `Warning: ${message}\n`,
  );
}

/** Unwraps an openapi-fetch result, turning problem details into a readable error. */
export function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data !== undefined) return result.data;
  throw ApiError.of(result.response, problemOf(result.error));
}

/**
 * The problem details of a refused request, when the answer had any: a proxy's HTML page (which
 * openapi-fetch hands over as a string) has none.
 */
export function problemOf(error: unknown): Problem | undefined {
  return typeof error === 'object' && error !== null && !Array.isArray(error)
    ? (error as Problem)
    : undefined;
}

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(columns.map((c) => String(r[c] ?? '')))),
  ].join('\n');
}

/** A `--since <version>` value: a change counter, so a whole number ≥ 0 (commander's parser). */
export function versionArgument(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('must be a whole number ≥ 0, a version');
  return Number(value);
}

/**
 * An attachment id as the server takes one (1–255 of `A-Z a-z 0-9 . _ -`, not `.` or `..`), checked
 * before any request: in a URL, `..` would name another path (`/attachments/..` is `/`).
 */
export function attachmentIdArgument(value: string): string {
  if (!/^[A-Za-z0-9._-]{1,255}$/.test(value) || value === '.' || value === '..')
    throw new InvalidArgumentError('must be an attachment id: 1–255 of A-Z a-z 0-9 . _ - (not . or ..)');
  return value;
}

/** A `--limit <n>` value: how many entries to list at most, so a whole number ≥ 1. */
export function countArgument(value: string): number {
  if (!/^\d{1,15}$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError('must be a whole number ≥ 1, how many to list');
  return Number(value);
}

/** A progress bar on stderr, only on an interactive terminal and never with --json. */
export function progressBar(label: string, total: number) {
  if (!process.stderr.isTTY || globals().json) return undefined;
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} bytes`, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total || 1, 0);
  return bar;
}
