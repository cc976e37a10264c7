// Per-namespace caps on what a tenant's work may ask for, from the namespace's LimitRanges (Kubernetes' own way
// to bound a namespace's containers): a LimitRange item of type Container with max.memory caps memoryMb, with
// max.ephemeral-storage caps diskMb. Work that asks for none (0: unlimited in Diego) is refused where a cap
// exists, since it would run without a bound. LimitRange defaults are not applied (this webhook validates; it
// does not change objects): the message says what to set.
import type { KubeConfig } from '@kubernetes/client-node';
import { rawRequest } from '../lib/kube.ts';
import type { FieldError } from './validate.ts';

interface LimitRangeList {
  items: { metadata: { name: string }; spec?: { limits?: { type?: string; max?: Record<string, string> }[] } }[];
}

const MI = 1024 * 1024;

/** Bytes of a Kubernetes quantity ("512Mi", "1Gi", "1G", "500M", "1048576"); undefined when unreadable. */
export function quantityBytes(q: string): number | undefined {
  const m = /^([0-9.]+)([A-Za-z]*)$/.exec(q.trim());
  if (!m) return undefined;
  const units: Record<string, number> = {
    '': 1,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 1024,
    Mi: MI,
    Gi: 1024 * MI,
    Ti: 1024 * 1024 * MI,
  };
  const unit = units[m[2]!];
  const n = Number(m[1]);
  return unit === undefined || !Number.isFinite(n) ? undefined : n * unit;
}

/** What the namespace's LimitRanges refuse in a DesiredLRP's or Task's spec. */
export async function namespaceCaps(
  kc: KubeConfig,
  namespace: string,
  spec: { memoryMb?: number; diskMb?: number },
): Promise<FieldError[]> {
  const list = await rawRequest<LimitRangeList>(kc, {
    method: 'GET',
    path: `/api/v1/namespaces/${namespace}/limitranges`,
  });
  const errors: FieldError[] = [];
  for (const lr of list.items) {
    for (const item of lr.spec?.limits ?? []) {
      if (item.type !== 'Container') continue;
      const check = (field: 'memoryMb' | 'diskMb', resource: string) => {
        const max = item.max?.[resource];
        const bytes = max === undefined ? undefined : quantityBytes(max);
        if (bytes === undefined) return;
        const capMb = Math.floor(bytes / MI);
        const asked = spec[field] ?? 0;
        if (asked === 0)
          errors.push({
            field: `spec.${field}`,
            message: `must be set: LimitRange ${lr.metadata.name} caps containers at ${max} (${capMb} MB)`,
          });
        else if (asked > capMb)
          errors.push({
            field: `spec.${field}`,
            message: `${asked} is above LimitRange ${lr.metadata.name}'s cap of ${max} (${capMb} MB)`,
          });
      };
      check('memoryMb', 'memory');
      check('diskMb', 'ephemeral-storage');
    }
  }
  return errors;
}
