// Admin kubeconfig with embedded certificates, so it works from any directory.
import { parse, stringify } from 'yaml';

export const KUBECONFIG_NAME = 'diego-local';

export function adminKubeconfig(server: string, caPem: string, client: { certPem: string; keyPem: string }): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const name = KUBECONFIG_NAME;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name, user: { 'client-certificate-data': b64(client.certPem), 'client-key-data': b64(client.keyPem) } }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
    preferences: {},
  });
}

/** The server URL of the current context, for kubeconfigs we did not write. */
export function currentServer(kubeconfigYaml: string): string {
  const doc = parse(kubeconfigYaml) as {
    'current-context'?: string;
    contexts?: { name: string; context?: { cluster?: string } }[];
    clusters?: { name: string; cluster?: { server?: string } }[];
  };
  const ctx = doc.contexts?.find((c) => c.name === doc['current-context']) ?? doc.contexts?.[0];
  const server = doc.clusters?.find((c) => c.name === ctx?.context?.cluster)?.cluster?.server;
  if (!server) throw new Error('kubeconfig has no server for its current context');
  return server;
}
