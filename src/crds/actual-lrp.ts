// ActualLRP: one instance of a DesiredLRP (bbs models/actual_lrp.proto). Written by the converger, the
// auctioneer and the cell-agent; users read it.
import { z } from 'zod';
import { conditions, doc, guid, observedGeneration, REASON_MAX_LENGTH, timestamp } from './common.ts';

export const ACTUAL_LRP_STATES = ['UNCLAIMED', 'CLAIMED', 'RUNNING', 'CRASHED'] as const;
export const PRESENCES = ['ORDINARY', 'EVACUATING', 'SUSPECT'] as const;

export const ActualLRPSpec = doc(
  z.object({
    processGuid: guid('Process guid of the DesiredLRP this is an instance of'),
    index: doc(z.int().min(0).max(100000), 'Instance index, 0 to instances-1.'),
    domain: doc(z.string().min(1).max(256), 'Domain of the DesiredLRP.'),
    cellId: doc(
      z.string().max(256).optional(),
      "The cell the auction placed this instance on (like a Pod's nodeName); that cell's agent claims and runs it. Empty while waiting for placement.",
    ),
  }),
  "The instance's key (Diego's ActualLRPKey), which never changes, and its placement.",
  [
    { rule: 'self.processGuid == oldSelf.processGuid', message: 'processGuid is immutable', fieldPath: '.processGuid' },
    { rule: 'self.index == oldSelf.index', message: 'index is immutable', fieldPath: '.index' },
    { rule: 'self.domain == oldSelf.domain', message: 'domain is immutable', fieldPath: '.domain' },
  ],
);

export const PortMapping = z.object({
  containerPort: doc(z.int().min(0).max(65535), 'Port inside the container.'),
  hostPort: doc(z.int().min(0).max(65535), 'Port on the cell that forwards to it.'),
  containerTlsProxyPort: doc(z.int().min(0).max(65535).optional(), 'TLS proxy port inside the container.'),
  hostTlsProxyPort: doc(z.int().min(0).max(65535).optional(), 'Host side of the TLS proxy port.'),
});

export const ActualLRPNetInfo = doc(
  z.object({
    address: doc(z.string().max(256).optional(), "The cell's address."),
    ports: doc(z.array(PortMapping).max(64).optional(), 'Container ports and the host ports mapped to them.'),
    instanceAddress: doc(z.string().max(256).optional(), "The container's own IP address."),
    preferredAddress: doc(
      z.enum(['UNKNOWN', 'INSTANCE', 'HOST']).optional(),
      'Which address routers should use: INSTANCE or HOST.',
    ),
    instanceIpv6Address: doc(z.string().max(256).optional(), "The container's IPv6 address."),
  }),
  'Where the running instance can be reached.',
);

export const ActualLRPStatus = doc(
  z.object({
    observedGeneration,
    conditions,
    state: doc(
      z.enum(ACTUAL_LRP_STATES).optional(),
      'UNCLAIMED (waiting for a cell), CLAIMED (starting on a cell), RUNNING (healthy) or CRASHED (waiting to restart).',
    ),
    presence: doc(
      z.enum(PRESENCES).optional(),
      'ORDINARY; EVACUATING while its cell drains; SUSPECT while its cell is unreachable.',
    ),
    instanceGuid: doc(
      z.string().max(256).optional(),
      'Guid of this placement; a new one each time the instance is placed.',
    ),
    cellId: doc(z.string().max(256).optional(), 'The cell running the instance.'),
    netInfo: ActualLRPNetInfo.optional(),
    crashCount: doc(z.int().min(0).optional(), 'Crashes in the current window (reset after 5 min of running).'),
    crashReason: doc(z.string().max(REASON_MAX_LENGTH).optional(), 'Why the instance last crashed.'),
    placementError: doc(
      z.string().max(REASON_MAX_LENGTH).optional(),
      "Why the auction could not place the instance, e.g. 'insufficient resources: memory'.",
    ),
    since: timestamp('When the state last changed.'),
    routable: doc(z.boolean().optional(), 'Whether routers should send traffic to it (readiness).'),
    availabilityZone: doc(z.string().max(256).optional(), "The cell's zone."),
    metricTags: doc(z.record(z.string(), z.string().max(1024)).optional(), 'Resolved metric tags of the instance.'),
    internalRoutes: doc(
      z
        .array(z.object({ hostname: doc(z.string().max(1024), 'An internal route host name.') }))
        .max(256)
        .optional(),
      'Internal route host names (for container-to-container certificates).',
    ),
    evacuatedBy: doc(
      z
        .object({
          cellId: doc(z.string().min(1).max(256), 'The evacuating cell.'),
          instanceGuid: doc(z.string().min(1).max(256), 'The instance guid it ran this record as.'),
        })
        .optional(),
      "Not in Diego (whose BBS copies and unclaims in one transaction): on an ORDINARY record, the container whose cell evacuated it (set by that cell when it unclaims the record after creating its EVACUATING copy, cleared by the converger once the replacement runs). The converger removes an EVACUATING copy that neither this nor the record's own instance key vouches for: a forged copy.",
    ),
  }),
  'The observed state of the instance (Diego ActualLRP fields).',
);

export type ActualLRPSpec = z.infer<typeof ActualLRPSpec>;
export type ActualLRPStatus = z.infer<typeof ActualLRPStatus>;
export type ActualLRPState = (typeof ACTUAL_LRP_STATES)[number];
export type Presence = (typeof PRESENCES)[number];
