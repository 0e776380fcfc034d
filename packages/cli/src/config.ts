import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { CliError } from './errors.ts';

/** `synk` keeps profiles (server URL, username) in `<config dir>/synk/config.json`, tokens beside it. */
export interface Profile {
  server: string;
  username?: string;
}

export interface CliConfig {
  current: string;
  profiles: Record<string, Profile>;
}

/**
 * `SYNK_CONFIG_DIR` (made absolute; an empty one is refused), else `$XDG_CONFIG_HOME/synk`, else
 * `~/.config/synk` (`%APPDATA%\synk` on Windows). As the XDG Base Directory spec asks, an empty or
 * relative `XDG_CONFIG_HOME` is ignored: it would put the configuration and its sessions in
 * whatever directory a command happens to run in.
 */
export function configDir(): string {
  const own = process.env.SYNK_CONFIG_DIR;
  if (own !== undefined) {
    if (own.trim() === '')
      throw new CliError('SYNK_CONFIG_DIR is set but empty: unset it or name a directory');
    return path.resolve(own);
  }
  const xdg = process.env.XDG_CONFIG_HOME;
  const base =
    xdg && path.isAbsolute(xdg)
      ? xdg
      : process.platform === 'win32'
        ? (process.env.APPDATA ?? homedir())
        : path.join(homedir(), '.config');
  return path.join(base, 'synk');
}

const file = () => path.join(configDir(), 'config.json');

/**
 * The configuration; none yet (no file) is an empty one. A file that cannot be read or is not a
 * configuration is an error, never taken for an empty one: the next write would erase its profiles.
 */
export async function readConfig(): Promise<CliConfig> {
  const where = file();
  let text: string;
  try {
    text = await readFile(where, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { current: 'default', profiles: {} };
    throw new CliError(`cannot read ${where}: ${(err as Error).message}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${where} is not valid JSON (${(err as Error).message}); fix or remove it`);
  }
  const { current, profiles } = (config ?? {}) as Partial<CliConfig>;
  const profileList = Object.values(profiles ?? {}) as unknown[];
  if (
    typeof current !== 'string' ||
    typeof profiles !== 'object' ||
    profiles === null ||
    Array.isArray(profiles) ||
    profileList.some((p) => typeof p !== 'object' || p === null || typeof (p as Profile).server !== 'string')
  )
    throw new CliError(
      `${where} is not a synk configuration ({"current": …, "profiles": {name: {"server": …}}}); fix or remove it`,
    );
  return { current, profiles };
}

export async function writeConfig(config: CliConfig): Promise<void> {
  await mkdir(configDir(), { recursive: true });
  // A name of its own, created here: a file left by an earlier write (or another synk writing at
  // the same time) would keep its own mode, and the configuration with it.
  const temp = `${file()}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await rename(temp, file());
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Where the SDK keeps this profile's session (tokens) and state for one server (`baseUrl`, as
 * `serverBaseUrl` writes it): a session is only ever sent to the server that issued it, whatever
 * --server, SYNK_SERVER or a changed profile point at. The server is hashed rather than spelled out:
 * a URL can be too long for a file name, and on a case-insensitive file system two URLs differing
 * only in case would share a session.
 */
/** Where versions before per-server sessions kept a profile's one session, whatever server it was for. */
export function legacyProfileStateDir(profile: string): string {
  return path.join(configDir(), 'profiles', encodeURIComponent(profile));
}

export function serverStateDir(profile: string, baseUrl: string): string {
  const server = createHash('sha256').update(baseUrl).digest('hex').slice(0, 32);
  return path.join(configDir(), 'profiles', encodeURIComponent(profile), 'servers', server);
}
