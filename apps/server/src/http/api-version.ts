import type { components } from '@synk/contract';
import type { RequestHandler } from 'express';
import { HttpProblem } from './errors.ts';

/**
 * API version negotiation (spec §0.8): the client may ask for `x-api-version: MAJOR.MINOR.PATCH`;
 * the server serves the highest version it supports that is ≤ the requested one within the same
 * MAJOR, and says which in `x-api-version-used`.
 */

export type ApiVersionInfo = components['schemas']['ApiVersionsResponse']['versions'][number];

/** Oldest first. 1.0.x is the Synkronus wire format; 1.1.0 adds this server's additive extensions. */
export const API_VERSIONS: readonly ApiVersionInfo[] = [
  { version: '1.0.0', releaseDate: '2025-05-01', deprecated: false },
  { version: '1.0.3', releaseDate: '2025-08-01', deprecated: false },
  { version: '1.1.0', releaseDate: '2026-11-24', deprecated: false },
];

export const CURRENT_API_VERSION = API_VERSIONS.at(-1)!.version;

type Triple = [number, number, number];

/**
 * Any digits are well-formed, as the contract's pattern says: a part too long for a number reads
 * as a huge one (`Infinity` beyond ~309 digits), which still compares as larger than every version.
 */
function parse(version: string): Triple | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

function compare(a: Triple, b: Triple): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

/** Returns the version to serve, or a problem for a malformed or unsupported request. */
export function negotiateApiVersion(requested: string | undefined): string | HttpProblem {
  if (requested === undefined) return CURRENT_API_VERSION;
  const wanted = parse(requested.trim());
  if (!wanted) {
    return new HttpProblem(
      400,
      'invalid_api_version',
      `x-api-version must look like MAJOR.MINOR.PATCH (got ${JSON.stringify(requested.slice(0, 64))})`,
    );
  }
  const candidates = API_VERSIONS.map((v) => ({ v, t: parse(v.version)! }))
    .filter(({ t }) => t[0] === wanted[0] && compare(t, wanted) <= 0)
    .sort((a, b) => compare(b.t, a.t));
  const chosen = candidates[0];
  if (!chosen) {
    const majors = [...new Set(API_VERSIONS.map((v) => v.version.split('.')[0]))].join(', ');
    return new HttpProblem(
      406,
      'unsupported_api_version',
      `API version ${requested.slice(0, 64)} is not supported; supported majors: ${majors}`,
      {
        extensions: { supported_versions: API_VERSIONS.map((v) => v.version) },
      },
    );
  }
  return chosen.v.version;
}

export const apiVersionNegotiation: RequestHandler = (req, res, next) => {
  const result = negotiateApiVersion(req.header('x-api-version'));
  if (result instanceof HttpProblem) {
    res.setHeader('x-api-version-used', CURRENT_API_VERSION);
    next(result);
    return;
  }
  res.setHeader('x-api-version-used', result);
  res.locals.apiVersion = result;
  next();
};
