// Reads for route-emitter and older clients: DesiredLRP routing infos (route-emitter falls back to full
// DesiredLRPs only on 404, so serving this keeps its sync cheap), and the deprecated ActualLRP group reads,
// built from the instance list as Diego's ResolveActualLRPGroups builds them.
import { create } from '@bufbuild/protobuf';
import type { IActualLRP } from '../crds/models.ts';
import { notFound, invalidField } from './errors.ts';
import { sel } from './handlers.ts';
import * as m from './models.ts';
import { route, type Ctx, type Route } from './route.ts';
import { actualLRPFromCR, desiredLRPFromCR } from './translate.ts';

/** Only what Diego's routing-info query selects: key, instances, routes, modification tag and metric tags. */
const routingInfoOf = (d: m.DesiredLRP): m.DesiredLRP =>
  create(m.DesiredLRPSchema, {
    processGuid: d.processGuid,
    domain: d.domain,
    logGuid: d.logGuid,
    instances: d.instances,
    routes: d.routes,
    modificationTag: d.modificationTag,
    metricTags: d.metricTags,
  });

async function routingInfos(req: m.DesiredLRPsRequest, ctx: Ctx) {
  // Diego filters routing infos by process guid only (domain and app guids are not part of its query).
  const wanted = new Set(req.processGuids);
  const items = await ctx.client.list('DesiredLRP', { namespace: ctx.namespace });
  return {
    $typeName: 'models.DesiredLRPsResponse' as const,
    desiredLrps: items
      .filter((d) => wanted.size === 0 || wanted.has(d.spec.processGuid))
      .map((d) => routingInfoOf(desiredLRPFromCR(d))),
  };
}

/** Diego's hasHigherPriority as a rank: RUNNING ORDINARY, then a RUNNING/CLAIMED SUSPECT, then CLAIMED ORDINARY. */
function rank(a: m.ActualLRP): number {
  const live = a.state === 'RUNNING' || a.state === 'CLAIMED';
  if (a.presence === m.ActualLRP_Presence.ORDINARY) return a.state === 'RUNNING' ? 4 : a.state === 'CLAIMED' ? 2 : 1;
  return live ? 3 : 0;
}

/** One group per index: the EVACUATING record apart, and the record that should be routed as `instance`. */
function resolveGroups(lrps: m.ActualLRP[]): m.ActualLRPGroup[] {
  const groups = new Map<string, m.ActualLRPGroup>();
  for (const a of lrps) {
    const k = `${a.actualLrpKey?.processGuid}\u0000${a.actualLrpKey?.index}\u0000${a.actualLrpKey?.domain}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { $typeName: 'models.ActualLRPGroup' }));
    if (a.presence === m.ActualLRP_Presence.EVACUATING) g.evacuating = a;
    else if (!g.instance || rank(a) > rank(g.instance)) g.instance = a;
  }
  return [...groups.values()];
}

async function actuals(ctx: Ctx, fields: Record<string, string>, index?: number): Promise<m.ActualLRP[]> {
  const selector = Object.entries(fields)
    .filter(([, v]) => v)
    .map(([k, v]) => sel(k, v))
    .join(',');
  const items: IActualLRP[] = await ctx.client.list('ActualLRP', {
    namespace: ctx.namespace,
    fieldSelector: selector || undefined,
  });
  return items.filter((a) => index === undefined || a.spec.index === index).map(actualLRPFromCR);
}

const groupsResponse = (groups: m.ActualLRPGroup[]) => ({
  $typeName: 'models.ActualLRPGroupsResponse' as const,
  actualLrpGroups: groups,
});

export const readRoutes: Record<string, Route> = {
  '/v1/desired_lrp_routing_infos/list': route(m.DesiredLRPsRequestSchema, m.DesiredLRPsResponseSchema, routingInfos),
  '/v1/actual_lrp_groups/list': route(
    m.ActualLRPGroupsRequestSchema,
    m.ActualLRPGroupsResponseSchema,
    async (req, ctx) => groupsResponse(resolveGroups(await actuals(ctx, { domain: req.domain, cellId: req.cellId }))),
  ),
  '/v1/actual_lrp_groups/list_by_process_guid': route(
    m.ActualLRPGroupsByProcessGuidRequestSchema,
    m.ActualLRPGroupsResponseSchema,
    async (req, ctx) => {
      if (!req.processGuid) throw invalidField('process_guid');
      return groupsResponse(resolveGroups(await actuals(ctx, { processGuid: req.processGuid })));
    },
  ),
  '/v1/actual_lrp_groups/get_by_process_guid_and_index': route(
    m.ActualLRPGroupByProcessGuidAndIndexRequestSchema,
    m.ActualLRPGroupResponseSchema,
    async (req, ctx) => {
      const bad = [...(req.processGuid ? [] : ['process_guid']), ...(req.index < 0 ? ['index'] : [])];
      if (bad.length > 0) throw invalidField(...bad);
      const lrps = await actuals(ctx, { processGuid: req.processGuid }, req.index);
      if (lrps.length === 0) throw notFound();
      return { $typeName: 'models.ActualLRPGroupResponse' as const, actualLrpGroup: resolveGroups(lrps)[0] };
    },
  ),
};
