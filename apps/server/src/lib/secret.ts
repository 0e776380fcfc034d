import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const SECRET_FILE = 'jwt-secret';

/**
 * The token signing key: JWT_SECRET when configured, otherwise a random 64-byte key generated on
 * first start and kept in the data directory (mode 0600). Several processes sharing the directory
 * agree on one key: the file is written complete under a temporary name and then hard-linked into
 * place, which fails if another process got there first, so nobody ever reads a half-written key.
 */
export async function loadSigningSecret(
  configured: string | undefined,
  dataDir: string,
): Promise<Uint8Array> {
  if (configured !== undefined) return new TextEncoder().encode(configured);
  const file = path.join(dataDir, SECRET_FILE);
  const existing = await readSecretFile(file);
  if (existing) return existing;

  await mkdir(dataDir, { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, randomBytes(64).toString('hex'), { mode: 0o600, flush: true });
  try {
    await link(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(temp);
  }
  const created = await readSecretFile(file);
  if (!created) throw new Error(`${file} does not hold a valid secret`);
  return created;
}

async function readSecretFile(file: string): Promise<Uint8Array | undefined> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!/^[0-9a-f]{64,}$/.test(text))
    throw new Error(`${file} does not hold a valid secret; delete it to generate a new one`);
  return Buffer.from(text, 'hex');
}
