// zod -> Kubernetes structural OpenAPI v3. zod's JSON Schema output is close; this pass makes it structural:
// no $ref (a recursive reference becomes an opaque object, see docs/adr/0001), no additionalProperties:false,
// a type on every node, and no int64 noise bounds.
import { z } from 'zod';

export type Schema = Record<string, unknown>;

// Formats the apiserver understands; others (zod's starts_with, ...) are dropped, their pattern stays.
const K8S_FORMATS = new Set([
  'uri',
  'email',
  'hostname',
  'ipv4',
  'ipv6',
  'cidr',
  'uuid',
  'date',
  'date-time',
  'duration',
  'byte',
  'int32',
  'int64',
]);
const NOISE_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]);

export function toStructural(schema: z.ZodType): Schema {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Schema;
  const defs = (json.$defs ?? json.definitions ?? {}) as Record<string, Schema>;
  delete json.$defs;
  delete json.definitions;
  return structuralize(json, defs, []);
}

function refName(ref: string): string {
  return ref.replace(/^#\/(\$defs|definitions)\//, '');
}

function structuralize(node: Schema, defs: Record<string, Schema>, chain: string[]): Schema {
  // openapi-3.0 output wraps "$ref + description" as allOf: [{$ref}]; unwrap a single-member allOf.
  if (Array.isArray(node.allOf) && node.allOf.length === 1) {
    const { allOf, ...rest } = node;
    node = { ...(allOf[0] as Schema), ...rest };
  }
  if (typeof node.$ref === 'string') {
    const name = refName(node.$ref);
    const def = defs[name];
    if (!def) throw new Error(`unresolved $ref ${node.$ref}`);
    const { $ref: _ref, ...siblings } = node;
    if (chain.includes(name)) {
      // Recursion: CRD schemas cannot recurse, so the subtree is kept as-is and validated by zod in the
      // admission webhook (and again by every component that reads it).
      const description = (siblings.description as string | undefined) ?? (def.description as string | undefined);
      return {
        type: 'object',
        'x-kubernetes-preserve-unknown-fields': true,
        description:
          `${description ?? ''} Nested actions have the same fields as the top-level action; kubectl explain shows them there.`.trim(),
      };
    }
    return structuralize({ ...def, ...siblings }, defs, [...chain, name]);
  }
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case 'id':
      case '$schema':
        break;
      case 'additionalProperties':
        if (value === false) break; // CRDs forbid false; pruning drops unknown fields anyway
        if (value && typeof value === 'object') out[key] = structuralizeValue(value as Schema, defs, chain);
        break;
      case 'properties': {
        const props: Schema = {};
        for (const [name, sub] of Object.entries(value as Record<string, Schema>)) {
          props[name] = structuralizeValue(sub, defs, chain);
        }
        out[key] = props;
        break;
      }
      case 'items':
        out[key] = structuralizeValue(value as Schema, defs, chain);
        break;
      case 'format':
        if (K8S_FORMATS.has(value as string)) out[key] = value;
        break;
      case 'minimum':
      case 'maximum':
        if (!NOISE_BOUNDS.has(value as number)) out[key] = value;
        break;
      default:
        out[key] = value;
    }
  }
  for (const forbidden of ['anyOf', 'oneOf', 'allOf', 'not']) {
    if (forbidden in out)
      throw new Error(
        `schema uses ${forbidden}, which a structural CRD schema cannot hold: ${JSON.stringify(node).slice(0, 200)}`,
      );
  }
  if (!out.type && !out['x-kubernetes-preserve-unknown-fields']) {
    // z.unknown(): any JSON value.
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  return out;
}

function structuralizeValue(node: Schema, defs: Record<string, Schema>, chain: string[]): Schema {
  return structuralize(node, defs, chain);
}
