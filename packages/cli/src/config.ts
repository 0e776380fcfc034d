import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

/** `synk` keeps profiles (server URL, username) in `<config dir>/synk/config.json`, tokens beside it. */
export interface Profile {
  server: string;
  username?: string;
}

export interface CliConfig {
  current: string;
  profiles: Record<string, Profile>;
}

export function configDir(): string {
  if (process.env.SYNK_CONFIG_DIR) return process.env.SYNK_CONFIG_DIR;
  const base =
    process.env.XDG_CONFIG_HOME ??
    (process.platform === 'win32' ? (process.env.APPDATA ?? homedir()) : path.join(homedir(), '.config'));
  return path.join(base, 'synk');
}

const file = () => path.join(configDir(), 'config.json');

export async function readConfig(): Promise<CliConfig> {
  try {
    return JSON.parse(await readFile(file(), 'utf8')) as CliConfig;
  } catch {
    return { current: 'default', profiles: {} };
  }
}

export async function writeConfig(config: CliConfig): Promise<void> {
  await mkdir(configDir(), { recursive: true });
  const temp = `${file()}.tmp`;
  await writeFile(temp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, file());
}

/** Where the SDK keeps this profile's session (tokens) and state. */
export function profileStateDir(profile: string): string {
  return path.join(configDir(), 'profiles', encodeURIComponent(profile));
}
