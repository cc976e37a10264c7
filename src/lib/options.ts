// Options merged over defaults, where an option given as undefined keeps the default
// (a plain `{ ...defaults, ...opts }` would let `{ intervalMs: undefined }` erase it).
export function withDefaults<D extends object, O extends object>(defaults: D, opts: O): D & O {
  const merged = { ...defaults } as Record<string, unknown>;
  for (const [key, value] of Object.entries(opts)) if (value !== undefined) merged[key] = value;
  return merged as D & O;
}
