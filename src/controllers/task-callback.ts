// Posts a completed task's result to its completion_callback_url the way BBS does (taskworkpool/taskcallback.go):
// JSON TaskCallbackResponse; 503, 504 and connection failures are retried at once, 3 attempts in all; any other
// answer (2xx or 4xx) means the task may be deleted. Shared by the task controller and the BBS facade.
import type { ITask } from '../crds/models.ts';
import { httpFetch } from '../lib/http.ts';

export const CALLBACK_ATTEMPTS = 3;
export const CALLBACK_TIMEOUT_MS = 10_000;

/** JSON body; created_at is int64 nanoseconds, written exactly (JSON.stringify would round past 2^53). */
export function callbackBody(t: ITask): string {
  const createdNs = BigInt(Date.parse(t.metadata.creationTimestamp?.toString() ?? '') || 0) * 1_000_000n;
  const body = JSON.stringify({
    task_guid: t.spec.taskGuid,
    failed: t.status?.failed ?? false,
    failure_reason: t.status?.failureReason ?? '',
    result: t.status?.result ?? '',
    annotation: t.spec.annotation ?? '',
    created_at: 0,
  });
  return body.replace(/"created_at":0}$/, `"created_at":${createdNs}}`);
}

export type CallbackOutcome = { done: true; status: number } | { done: false; reason: string };

/** The part of fetch() a callback needs (tests pass their own). */
export type CallbackFetch = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<{ status: number; arrayBuffer(): Promise<ArrayBuffer> }>;

export async function postCallback(t: ITask, fetchImpl: CallbackFetch = httpFetch): Promise<CallbackOutcome> {
  const url = t.spec.completionCallbackUrl;
  if (!url) return { done: true, status: 0 };
  let reason = '';
  for (let attempt = 1; attempt <= CALLBACK_ATTEMPTS; attempt++) {
    try {
      const res = await fetchImpl(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: callbackBody(t),
        signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status !== 503 && res.status !== 504) return { done: true, status: res.status };
      reason = `callback answered ${res.status}`;
    } catch (err) {
      reason = `callback failed: ${(err as Error).message}`;
    }
  }
  return { done: false, reason };
}
