// What benchmarks read from the API server's own /metrics.
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { rawRequest } from '../src/lib/kube.ts';

/** Mutating requests the API server has served so far, by "VERB resource[/subresource]". */
export async function apiWrites(kc: KubeConfig): Promise<Map<string, number>> {
  const text = await rawRequest<string>(kc, { method: 'GET', path: '/metrics' });
  const out = new Map<string, number>();
  for (const line of String(text).split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const verb = /verb="(POST|PUT|PATCH|DELETE|APPLY)"/.exec(line)?.[1];
    if (!verb) continue;
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? '?';
    const sub = /subresource="([^"]+)"/.exec(line)?.[1];
    const key = `${verb} ${resource}${sub ? `/${sub}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

export const sumWrites = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

/** CPU seconds (user + system) a process has used. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (CLK_TCK 100)
}
