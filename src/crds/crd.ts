// Builds the CustomResourceDefinition of each Diego kind from its zod schemas.
import { CATEGORY, GROUP, type KindInfo, VERSION } from './kinds.ts';
import { type Schema, toStructural } from './openapi.ts';

export function buildCRD(info: KindInfo): Schema {
  const version: Schema = {
    name: VERSION,
    served: true,
    storage: true,
    schema: {
      openAPIV3Schema: {
        type: 'object',
        description: info.description,
        required: ['spec'],
        properties: {
          apiVersion: { type: 'string', description: 'diego.dev/v1alpha1' },
          kind: { type: 'string', description: info.kind },
          metadata: { type: 'object' },
          spec: toStructural(info.spec),
          status: toStructural(info.status),
        },
      },
    },
    subresources: {
      status: {},
      ...(info.scale ? { scale: info.scale } : {}),
    },
    additionalPrinterColumns: info.printerColumns,
    ...(info.selectableFields ? { selectableFields: info.selectableFields.map((jsonPath) => ({ jsonPath })) } : {}),
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${info.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'diego-operator' },
    },
    spec: {
      group: GROUP,
      scope: info.scope,
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: info.shortNames,
        categories: [CATEGORY],
      },
      versions: [version],
    },
  };
}

export function crdFileName(info: KindInfo): string {
  return `${GROUP}_${info.plural}.yaml`;
}
