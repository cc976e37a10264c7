// Every route of Diego's routes.go (bbs b2385bea) is served, and nothing else answers. A route added to or
// dropped from the app shows up here.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../lib/log.ts';
import type { DiegoClient } from '../lib/resources.ts';
import { buildBbsApp } from './app.ts';

const DIEGO_ROUTES = `
POST /v1/ping
POST /v1/domains/list
POST /v1/domains/upsert
POST /v1/actual_lrps/list
POST /v1/actual_lrps/list_by_process_guids
POST /v1/actual_lrp_groups/list
POST /v1/actual_lrp_groups/list_by_process_guid
POST /v1/actual_lrp_groups/get_by_process_guid_and_index
POST /v1/actual_lrps/claim
POST /v1/actual_lrps/start.r1
POST /v1/actual_lrps/start
POST /v1/actual_lrps/crash
POST /v1/actual_lrps/fail
POST /v1/actual_lrps/remove
POST /v1/actual_lrps/retire
POST /v1/actual_lrps/remove_evacuating
POST /v1/actual_lrps/evacuate_claimed
POST /v1/actual_lrps/evacuate_crashed
POST /v1/actual_lrps/evacuate_stopped
POST /v1/actual_lrps/evacuate_running.r1
POST /v1/actual_lrps/evacuate_running
POST /v1/desired_lrp_scheduling_infos/list
POST /v1/desired_lrp_scheduling_infos/get_by_process_guid
POST /v1/desired_lrp_routing_infos/list
POST /v1/desired_lrps/list.r3
POST /v1/desired_lrps/get_by_process_guid.r3
POST /v1/desired_lrps/list.r2
POST /v1/desired_lrps/get_by_process_guid.r2
POST /v1/desired_lrp/desire.r2
POST /v1/desired_lrp/update
POST /v1/desired_lrp/remove
POST /v1/tasks/list.r3
POST /v1/tasks/get_by_task_guid.r3
POST /v1/tasks/list.r2
POST /v1/tasks/get_by_task_guid.r2
POST /v1/tasks/desire.r2
POST /v1/tasks/start
POST /v1/tasks/cancel
POST /v1/tasks/fail
POST /v1/tasks/reject
POST /v1/tasks/complete
POST /v1/tasks/resolving
POST /v1/tasks/delete
GET /v1/events.r1
POST /v1/events/tasks.r1
POST /v1/events/lrp_instances.r1
GET /v1/events
POST /v1/events/tasks
POST /v1/events/lrp_instances
POST /v1/cells/list.r1
`
  .trim()
  .split('\n')
  .map((l) => l.split(' ') as ['GET' | 'POST', string]);

describe("Diego's route table", () => {
  it('is served in full (all 50 routes), and an unknown path answers a plain 404', async () => {
    const app = buildBbsApp({ client: {} as DiegoClient, namespace: 'ns', logger: createLogger('silent') });
    await app.ready();
    expect(DIEGO_ROUTES).toHaveLength(50);
    expect(DIEGO_ROUTES.filter(([method, url]) => !app.hasRoute({ method, url })).map(([, url]) => url)).toEqual([]);
    const r = await app.inject({ method: 'POST', url: '/v1/actual_lrps/evacuate_everything' });
    expect(r.statusCode).toBe(404);
    await app.close();
  });
});
