/** The Node.js major version the server is built and tested for (package.json `engines`). */
export const REQUIRED_NODE_MAJOR = 24;

/**
 * Why the server cannot run on Node.js `version` (e.g. `20.20.2`), or undefined when it can. Checked
 * before anything native is loaded: better-sqlite3 and argon2 are built for one Node.js ABI, and
 * loaded into another they crash the process without a word (a segmentation fault on Node 20).
 */
export function unsupportedNode(version: string): string | undefined {
  const major = Number(version.split('.')[0]);
  if (major === REQUIRED_NODE_MAJOR) return undefined;
  return `synk server needs Node.js ${REQUIRED_NODE_MAJOR} (this is ${version}). Start it with \`npm start\`, which runs the Node.js ${REQUIRED_NODE_MAJOR} that \`npm install\` brings (node_modules/.bin/node).`;
}
