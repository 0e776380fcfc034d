/**
 * Names that a server's manifest hands to `LocalFiles`, checked before any of them is used: an app
 * keeps its files under a directory and builds their paths from these names, so a hostile or broken
 * server (or whatever answers in its place) must not be able to name a file outside it
 * (`../../.bashrc`, `/etc/hosts`, `C:\…`). A well-behaved server never sends such names: it refuses
 * them on upload (attachment ids, bundle entries).
 */

/** One path segment of 1–255 `[A-Za-z0-9._-]`, not `.` or `..`, as the server accepts (openapi.yaml, AttachmentId). */
const ATTACHMENT_ID = /^[A-Za-z0-9._-]{1,255}$/;

export function checkAttachmentId(id: string): void {
  if (!ATTACHMENT_ID.test(id) || id === '.' || id === '..')
    throw new Error(`the server named an attachment ${JSON.stringify(id)}, which is not a safe file name`);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const UNSAFE_IN_PATH = /[\\\u0000-\u001f\u007f]|^[A-Za-z]:/;

/**
 * A relative path of non-empty segments, none `.` or `..`, without backslashes, drive letters or
 * control characters: the rules the server applies to bundle entries (packages/bundle-rules, which
 * this published package cannot depend on).
 */
export function checkBundlePath(path: string): void {
  const unsafe =
    UNSAFE_IN_PATH.test(path) || path.split('/').some((s) => s === '' || s === '.' || s === '..');
  if (unsafe)
    throw new Error(
      `the app bundle manifest names ${JSON.stringify(path)}, which is not a safe relative path`,
    );
}
