// The Helm chart's values, as a zod schema: the single source of charts/diego-operator/values.schema.json (written
// by `make manifests`, checked by `make check-manifests`), which Helm applies on install, upgrade, template and lint,
// so a wrong value (a string replica count, an unknown backend, a misspelt key) fails with a message naming it.
// Rules that depend on several values (e.g. bbs.tls.existingSecret when bbs.enabled) stay in the templates, where
// `required`/`fail` say what to set.
import { z } from 'zod';
import { SecurityGroupRule } from '../src/crds/common.ts';

const str = z.string();
const bool = z.boolean();
const count = z.number().int().min(0);
const port = z.number().int().min(1).max(65535);
const map = z.record(z.string(), z.string());
/** Kubernetes objects the chart passes through as they are (tolerations, affinity, env, resources, ...). */
const passThrough = z.record(z.string(), z.unknown());
const quantity = z.union([z.string(), z.number()]);
const resources = z
  .object({
    requests: z.record(z.string(), quantity).optional(),
    limits: z.record(z.string(), quantity).optional(),
  })
  .strict();
const podPlacement = {
  podAnnotations: map,
  podLabels: map,
  nodeSelector: map,
  tolerations: z.array(passThrough),
  affinity: passThrough,
  priorityClassName: str,
  extraArgs: z.array(str),
  extraEnv: z.array(passThrough),
};

export const chartValues = z
  .object({
    image: z
      .object({
        repository: str.min(1),
        tag: str,
        pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']),
      })
      .strict(),
    imagePullSecrets: z.array(z.object({ name: str.min(1) }).strict()),
    nameOverride: str,
    fullnameOverride: str,
    commonLabels: map,
    systemNamespace: str,
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
    rbac: z.object({ create: bool }).strict(),
    serviceAccount: z
      .object({
        create: bool,
        annotations: map,
        controller: z.object({ name: str }).strict(),
        cellAgent: z.object({ name: str }).strict(),
        bbs: z.object({ name: str }).strict(),
        routeEmitter: z.object({ name: str }).strict(),
      })
      .strict(),
    controller: z
      .object({
        replicas: count,
        metricsPort: port,
        webhookPort: port,
        shutdownDelaySeconds: z.number().int().min(0).max(3600),
        resources,
        podDisruptionBudget: z.object({ enabled: bool, minAvailable: z.union([count, str]) }).strict(),
        kubeApiQps: z.number().min(0),
        kubeApiBurst: count,
        endpointSlices: bool,
        webView: z.object({ enabled: bool, port }).strict(),
        ...podPlacement,
      })
      .strict(),
    webhook: z
      .object({
        enabled: bool,
        failurePolicy: z.enum(['Fail', 'Ignore']),
        timeoutSeconds: z.number().int().min(1).max(30),
        certManager: z.object({ enabled: bool, issuerRef: passThrough }).strict(),
        certValidityDays: z.number().int().min(1),
      })
      .strict(),
    imageCredentials: z.object({ audience: str.min(1), caConfigMap: str, caKey: str.min(1) }).strict(),
    cellAgent: z
      .object({
        enabled: bool,
        backend: z.enum(['runc', 'containerd', 'process']),
        containerd: z.object({ address: str.min(1), insecureRegistries: z.array(str) }).strict(),
        stateDir: str.min(1),
        // "auto" (Diego's default): the node's whole memory, the size of the filesystem holding the state dir.
        capacity: z
          .object({
            memoryMb: z.union([count, z.literal('auto')]),
            diskMb: z.union([count, z.literal('auto')]),
            containers: count,
          })
          .strict(),
        stacks: z.array(str.min(1)),
        placementTags: z.array(str),
        optionalPlacementTags: z.array(str),
        volumeDrivers: z.array(str),
        volumeDriverPaths: z.array(str),
        volumeMountsPaths: z.array(str),
        opsAddress: str,
        maxLogLinesPerSecond: count,
        zone: str,
        instanceIdentity: z
          .object({
            enabled: bool,
            existingSecret: str,
            caValidityDays: z.number().int().min(1),
            validitySeconds: z.number().int().min(60),
          })
          .strict(),
        trustedCertsConfigMap: str,
        maxCacheSizeMb: count,
        // The same rules as a DesiredLRP's egressRules (Diego's security group rules).
        defaultEgress: z.array(SecurityGroupRule),
        dnsServers: z.array(str),
        defaultContainerLimits: z.object({ memoryMb: count, diskMb: count, maxPids: count }).strict(),
        containerProxy: z
          .object({ enabled: bool, requireClientCerts: bool, trustedCaConfigMap: str, trustedCaKey: str.min(1) })
          .strict(),
        resources,
        evacuationTimeoutSeconds: count,
        onSigterm: z.enum(['detach', 'evacuate']),
        terminationGracePeriodSeconds: count.nullish(),
        updateStrategy: passThrough,
        ...podPlacement,
      })
      .strict(),
    bbs: z
      .object({
        enabled: bool,
        replicas: count,
        port,
        healthPort: port,
        metricsPort: port,
        namespace: str,
        locket: z.object({ enabled: bool, port }).strict(),
        tls: z
          .object({ existingSecret: str, certKey: str.min(1), keyKey: str.min(1), clientCaKey: str.min(1) })
          .strict(),
        service: z
          .object({ type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']), clusterIP: str, annotations: map })
          .strict(),
        resources,
        ...podPlacement,
      })
      .strict(),
    routeEmitter: z
      .object({
        enabled: bool,
        mode: z.enum(['global', 'cell']),
        replicas: count,
        nats: z
          .object({
            servers: str,
            user: str,
            existingSecret: str,
            passwordKey: str.min(1),
            tls: z.object({ enabled: bool, caKey: str.min(1), certKey: str.min(1), keyKey: str.min(1) }).strict(),
          })
          .strict(),
        directInstanceRoutes: bool,
        emitEndpointUpdatedAt: bool,
        metricsPort: port,
        resources,
        ...podPlacement,
      })
      .strict(),
    admissionPolicies: z
      .object({
        enabled: bool,
        maxCellCapacity: z
          .object({ memoryMb: count.nullish(), diskMb: count.nullish(), containers: count.nullish() })
          .strict(),
      })
      .strict(),
    networkPolicy: z
      .object({ enabled: bool, metricsFrom: z.array(passThrough), bbsFrom: z.array(passThrough) })
      .strict(),
    flowControl: z
      .object({
        enabled: bool,
        leasePrecedence: z.number().int().min(1).max(10000),
        workload: z
          .object({
            precedence: z.number().int().min(1).max(10000),
            nominalConcurrencyShares: count,
            lendablePercent: z.number().int().min(0).max(100),
            queues: z.number().int().min(1),
            handSize: z.number().int().min(1),
            queueLengthLimit: z.number().int().min(1),
          })
          .strict(),
      })
      .strict(),
    uninstall: z.object({ deleteWorkloads: bool, timeoutSeconds: count }).strict(),
    serviceMonitor: z
      .object({ enabled: bool, interval: str.min(1), labels: map, prometheusServiceAccount: str })
      .strict(),
    securityContext: passThrough,
  })
  .strict();

/** The JSON Schema Helm reads (draft 7: what Helm's validator supports). */
export function valuesJsonSchema(): string {
  const schema = z.toJSONSchema(chartValues, { target: 'draft-7', io: 'input' });
  return `${JSON.stringify(schema, null, 2)}\n`;
}
