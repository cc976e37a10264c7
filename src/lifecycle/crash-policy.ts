// Diego's crash restart policy (bbs models/restart_calculator.go), as pure functions, with the per-LRP
// override Diego's users asked for (DesiredLRP spec.crashRestartPolicy).
import type { DesiredLRPSpec } from '../crds/desired-lrp.ts';

export interface CrashPolicy {
  /** Crash counts below this restart at once (Diego: 3, so crashes #1 and #2 restart immediately). */
  immediateRestarts: number;
  /** First backoff in ms (Diego: 30 s); doubles for each further crash. */
  minBackoffMs: number;
  /** Longest backoff in ms (Diego: 16 min). */
  maxBackoffMs: number;
  /** Crash counts at or above this are never restarted (Diego: 200). */
  maxRestarts: number;
  /** A crash after running this long starts the count again at 1 (Diego: 5 min). */
  resetAfterMs: number;
}

export const DIEGO_CRASH_POLICY: CrashPolicy = {
  immediateRestarts: 3,
  minBackoffMs: 30_000,
  maxBackoffMs: 16 * 60_000,
  maxRestarts: 200,
  resetAfterMs: 5 * 60_000,
};

export function crashPolicyFor(spec: Pick<DesiredLRPSpec, 'crashRestartPolicy'> | undefined): CrashPolicy {
  const o = spec?.crashRestartPolicy ?? {};
  return {
    immediateRestarts: o.immediateRestarts ?? DIEGO_CRASH_POLICY.immediateRestarts,
    minBackoffMs: o.minBackoffMs ?? DIEGO_CRASH_POLICY.minBackoffMs,
    maxBackoffMs: o.maxBackoffMs ?? DIEGO_CRASH_POLICY.maxBackoffMs,
    maxRestarts: o.maxRestarts ?? DIEGO_CRASH_POLICY.maxRestarts,
    resetAfterMs: o.resetAfterMs ?? DIEGO_CRASH_POLICY.resetAfterMs,
  };
}

/**
 * The crash count after a crash: +1, or back to 1 when the instance had been RUNNING longer than
 * resetAfterMs (Diego's CrashResetTimeout).
 */
export function nextCrashCount(
  previousCount: number,
  wasRunningSinceMs: number | undefined,
  nowMs: number,
  policy = DIEGO_CRASH_POLICY,
): number {
  if (wasRunningSinceMs !== undefined && nowMs - wasRunningSinceMs > policy.resetAfterMs) return 1;
  return previousCount + 1;
}

/** Backoff before a crashed instance with this crash count may restart; undefined = never. */
export function restartDelayMs(crashCount: number, policy = DIEGO_CRASH_POLICY): number | undefined {
  if (crashCount < policy.immediateRestarts) return 0;
  if (crashCount >= policy.maxRestarts) return undefined;
  // Diego caps the exponent at floor(log2(ceil(max/min))) so the doubling never overflows.
  const maxExponent =
    policy.minBackoffMs > 0 ? Math.floor(Math.log2(Math.ceil(policy.maxBackoffMs / policy.minBackoffMs))) : 0;
  const exponent = Math.min(crashCount - policy.immediateRestarts, maxExponent);
  return Math.min(policy.minBackoffMs * 2 ** exponent, policy.maxBackoffMs);
}

export type RestartDecision = { restart: 'now' } | { restart: 'later'; afterMs: number } | { restart: 'never' };

/** Whether a CRASHED instance (crashed at crashedAtMs with crashCount) should be restarted at nowMs. */
export function shouldRestart(
  crashCount: number,
  crashedAtMs: number,
  nowMs: number,
  policy = DIEGO_CRASH_POLICY,
): RestartDecision {
  const delay = restartDelayMs(crashCount, policy);
  if (delay === undefined) return { restart: 'never' };
  const wait = crashedAtMs + delay - nowMs;
  return wait <= 0 ? { restart: 'now' } : { restart: 'later', afterMs: wait };
}
