// Diego's process guid is the LRP's identity (the BBS's primary key): two DesiredLRPs with one process guid would
// run two index-0 instances under one guid, and BBS clients could not tell them apart. Namespaced objects cannot
// make it unique by name, so admission looks for another DesiredLRP with the same spec.processGuid (a selectable
// field) anywhere in the cluster. Best effort: two creates racing through admission at the same moment both pass.
import type { DiegoClient } from '../lib/resources.ts';
import type { AdmissionRequest } from './admission.ts';

/** The message refusing a DesiredLRP create whose process guid another DesiredLRP has, or undefined. */
export async function processGuidTaken(client: DiegoClient, request: AdmissionRequest): Promise<string | undefined> {
  if (request.kind.kind !== 'DesiredLRP' || request.operation !== 'CREATE') return undefined;
  const object = request.object as {
    spec?: { processGuid?: unknown };
    metadata?: { namespace?: string; name?: string };
  };
  const guid = object.spec?.processGuid;
  if (typeof guid !== 'string' || !/^[a-zA-Z0-9_-]+$/.test(guid)) return undefined; // validation reports it
  const others = await client.list('DesiredLRP', { fieldSelector: `spec.processGuid=${guid}` });
  const other = others.find(
    (d) => d.metadata.namespace !== object.metadata?.namespace || d.metadata.name !== object.metadata?.name,
  );
  return other
    ? `spec.processGuid: ${guid} is already the process guid of DesiredLRP ${other.metadata.namespace}/${other.metadata.name}; process guids are unique in the cluster (Diego's LRP identity)`
    : undefined;
}
