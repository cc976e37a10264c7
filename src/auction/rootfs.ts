// Rootfs URL parsing and matching against a cell's rootfs providers (Diego rep: rootfs_providers.go semantics).
//
// A rootfs is a URL whose scheme picks the provider, by exact scheme (RootFSProviders.Match looks the scheme up):
//  - `preloaded:<stack>` and `preloaded+layer:<stack>?layer=...` are *fixed-set* schemes: the URL's opaque part
//    (text after the colon, before any `?` or `#`, when it does not start with `/`) must name a stack that the
//    cell's provider *of that scheme* lists. Diego's rep advertises both schemes with the same stacks
//    (auctioncellrep/auction_cell_rep.go rootFSProviders), and so does our cell agent;
//  - any other scheme (e.g. `docker:///image`) is *arbitrary*: it matches whenever the cell lists that provider.
import type { RootfsProvider } from './types.ts';

export const PRELOADED_SCHEME = 'preloaded';
export const PRELOADED_LAYER_SCHEME = 'preloaded+layer';

export interface ParsedRootFs {
  /** Lower-cased URL scheme. */
  scheme: string;
  /** The opaque part (`cflinuxfs4` in `preloaded:cflinuxfs4`); empty when the URL has a hierarchical path. */
  opaque: string;
}

const isLetter = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isSchemeTail = (c: number): boolean =>
  isLetter(c) || (c >= 0x30 && c <= 0x39) || c === 0x2b /* + */ || c === 0x2d /* - */ || c === 0x2e; /* . */

/**
 * Parses a rootfs URL into scheme and opaque part, following RFC 3986 scheme syntax as Go's url.Parse does.
 * Returns undefined when the string has no valid scheme or contains control characters (no provider can match).
 */
export function parseRootFs(rootFs: string): ParsedRootFs | undefined {
  for (let i = 0; i < rootFs.length; i++) {
    const c = rootFs.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return undefined;
  }
  const colon = rootFs.indexOf(':');
  if (colon <= 0) return undefined;
  if (!isLetter(rootFs.charCodeAt(0))) return undefined;
  for (let i = 1; i < colon; i++) if (!isSchemeTail(rootFs.charCodeAt(i))) return undefined;
  const scheme = rootFs.slice(0, colon).toLowerCase();
  let rest = rootFs.slice(colon + 1);
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const query = rest.indexOf('?');
  if (query >= 0) rest = rest.slice(0, query);
  return { scheme, opaque: rest.startsWith('/') ? '' : rest };
}

/** True for the schemes whose providers hold a fixed set of stacks. */
export function isFixedSetScheme(scheme: string): boolean {
  return scheme === PRELOADED_SCHEME || scheme === PRELOADED_LAYER_SCHEME;
}

/** Whether a cell with these providers can run this rootfs: its provider for the rootfs's scheme matches it. */
export function matchRootFs(providers: readonly RootfsProvider[], rootFs: string | ParsedRootFs): boolean {
  const parsed = typeof rootFs === 'string' ? parseRootFs(rootFs) : rootFs;
  if (parsed === undefined) return false;
  const fixedSet = isFixedSetScheme(parsed.scheme);
  return providers.some(
    (p) =>
      p.name.toLowerCase() === parsed.scheme &&
      (!fixedSet || (parsed.opaque !== '' && (p.properties ?? []).includes(parsed.opaque))),
  );
}
