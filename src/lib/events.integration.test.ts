// Events against a real API server: a repeated event is one Event whose count grows (client-go's correlation), a
// different message is another Event, and an object gets at most a burst of events before the rest are dropped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deleteNamespace, testKubeConfig } from '../../test/support/kube.ts';
import { createLogger } from './log.ts';
import { rawRequest } from './kube.ts';
import { EventRecorder, SPAM_BURST } from './events.ts';

const kc = testKubeConfig();
let ns = '';
beforeAll(async () => {
  ns = await createNamespace(kc, 'events');
});
afterAll(() => deleteNamespace(kc, ns));

interface Ev {
  reason: string;
  message: string;
  count: number;
  involvedObject: { name: string };
}
const eventsOf = async (name: string): Promise<Ev[]> =>
  (await rawRequest<{ items: Ev[] }>(kc, { method: 'GET', path: `/api/v1/namespaces/${ns}/events` })).items.filter(
    (e) => e.involvedObject.name === name,
  );
const target = (name: string) => ({
  apiVersion: 'diego.dev/v1alpha1',
  kind: 'ActualLRP',
  metadata: { name, namespace: ns, uid: `uid-${name}` },
});

describe('EventRecorder', () => {
  it('folds repeats of one event into its count; another message is another Event', async () => {
    const rec = new EventRecorder(kc, 'test', createLogger('warn'));
    for (let i = 0; i < 7; i++) rec.record(target('a'), 'Warning', 'PlacementFailed', 'no room');
    rec.record(target('a'), 'Normal', 'Placed', 'placed on cell-1');
    await expect
      .poll(async () => (await eventsOf('a')).map((e) => [e.reason, e.count]).sort(), { timeout: 30_000 })
      .toEqual([
        ['Placed', 1],
        ['PlacementFailed', 7],
      ]);
  });

  it('records at most a burst of events for one object', async () => {
    let clock = 1_000_000;
    const rec = new EventRecorder(kc, 'test', createLogger('warn'), () => clock);
    for (let i = 0; i < SPAM_BURST + 10; i++) rec.record(target('b'), 'Normal', 'Step', `step ${i}`);
    await expect.poll(async () => (await eventsOf('b')).length, { timeout: 30_000 }).toBe(SPAM_BURST);
    // Another object has its own budget; this one gets one more after the refill period.
    rec.record(target('c'), 'Normal', 'Step', 'first');
    clock += 5 * 60_000;
    rec.record(target('b'), 'Normal', 'Step', 'later');
    await expect.poll(async () => (await eventsOf('c')).length, { timeout: 30_000 }).toBe(1);
    await expect.poll(async () => (await eventsOf('b')).length, { timeout: 30_000 }).toBe(SPAM_BURST + 1);
  });
});
