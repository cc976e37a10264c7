// Full validation of Diego objects: the zod schemas (which recurse through the action tree, unlike the CRD
// schema) plus the byte-size limits Diego enforces. Used by the admission webhook, and by every component
// that must not act on an invalid object that slipped past it.
import type { z } from 'zod';
import { actionDepth, MAX_ACTION_DEPTH } from '../crds/actions.ts';
import { ANNOTATION_MAX_BYTES, ROUTES_MAX_BYTES, VOLUME_MOUNTED_FILES_MAX_BYTES } from '../crds/common.ts';
import { KINDS, type KindInfo } from '../crds/kinds.ts';
import { parseRoutes } from '../crds/routes.ts';
import { diegoRules } from './diego-rules.ts';

export interface FieldError {
  /** Path in kubectl style, e.g. spec.action.serial.actions[1].timeout.timeoutMs */
  field: string;
  message: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** Diego's limits that a CRD schema can't express (they count bytes, or span several fields). */
function diegoLimits(spec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  if (typeof spec.annotation === 'string' && bytes(spec.annotation) > ANNOTATION_MAX_BYTES) {
    errors.push({
      field: 'spec.annotation',
      message: `must be at most ${ANNOTATION_MAX_BYTES} bytes, got ${bytes(spec.annotation)}`,
    });
  }
  if (spec.routes && typeof spec.routes === 'object') {
    const total = Object.values(spec.routes).reduce<number>((n, v) => n + bytes(JSON.stringify(v) ?? ''), 0);
    if (total > ROUTES_MAX_BYTES) {
      errors.push({
        field: 'spec.routes',
        message: `route values must total at most ${ROUTES_MAX_BYTES} bytes, got ${total}`,
      });
    }
  }
  const files = [...((spec.volumeMountedFiles as { content?: string }[] | undefined) ?? [])];
  const fileBytes = files.reduce((n, f) => n + bytes(f.content ?? ''), 0);
  if (fileBytes > VOLUME_MOUNTED_FILES_MAX_BYTES) {
    errors.push({
      field: 'spec.volumeMountedFiles',
      message: `files must total at most ${VOLUME_MOUNTED_FILES_MAX_BYTES} bytes, got ${fileBytes}`,
    });
  }
  for (const field of ['setup', 'action', 'monitor']) {
    if (spec[field] !== undefined && actionDepth(spec[field]) > MAX_ACTION_DEPTH) {
      errors.push({ field: `spec.${field}`, message: `action tree is deeper than ${MAX_ACTION_DEPTH} levels` });
    }
  }
  return errors;
}

function zodErrors(schema: z.ZodType, value: unknown, prefix: string[]): FieldError[] {
  const result = schema.safeParse(value);
  if (result.success) return [];
  return result.error.issues.map((issue) => {
    let path = [...prefix, ...issue.path];
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      // Name the unknown key itself, e.g. an unknown action type.
      const keys = issue.keys;
      path = [...path, keys[0] ?? ''];
      message = `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')}`;
    }
    return { field: formatPath(path), message };
  });
}

export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}

/** Validates a Diego object's spec; an empty list means valid. */
export function validateSpec(kind: string, spec: unknown): FieldError[] {
  const info = kindInfo(kind);
  if (!info) return [{ field: 'kind', message: `unknown kind ${kind}` }];
  if (spec === null || typeof spec !== 'object') return [{ field: 'spec', message: 'spec is required' }];
  const limits = diegoLimits(spec as Record<string, unknown>);
  // A tree past the depth limit is not handed to zod at all.
  if (limits.some((e) => e.message.startsWith('action tree'))) return limits;
  return [...zodErrors(info.spec, spec, ['spec']), ...limits, ...diegoRules(spec as Record<string, unknown>)];
}

/**
 * Admission only: a DesiredLRP's cf-router, tcp-router and internal-router routes must be what the route emitter
 * can register. Not part of validateSpec: an object stored before this check still runs (its bad routes are
 * skipped by the emitter, with an Event), it is only refused when written again.
 */
export function routeErrors(spec: Record<string, unknown>): FieldError[] {
  const routes = spec.routes;
  if (!routes || typeof routes !== 'object' || Array.isArray(routes)) return [];
  const ports = Array.isArray(spec.ports) ? spec.ports.filter((p): p is number => typeof p === 'number') : [];
  return parseRoutes(routes as Record<string, unknown>, ports).problems.map((p) => ({
    field: `spec.${p.field}`,
    message: p.message,
  }));
}

export function describeErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}
