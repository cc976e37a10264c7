// admission.k8s.io/v1 AdmissionReview handling: turns a review request into an allow/deny response.
import { describeErrors, routeErrors, validateSpec } from './validate.ts';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  object?: { spec?: unknown; metadata?: { namespace?: string; name?: string } };
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: {
    uid: string;
    allowed: boolean;
    status?: {
      code: number;
      reason: string;
      message: string;
      details?: { causes: { field: string; message: string; reason: string }[] };
    };
  };
}

export function review(body: AdmissionReview): AdmissionReview {
  const request = body.request;
  if (!request) throw new Error('AdmissionReview without a request');
  const base = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' } as const;
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') {
    return { ...base, response: { uid: request.uid, allowed: true } };
  }
  const spec = request.object?.spec;
  const errors = validateSpec(request.kind.kind, spec);
  if (request.kind.kind === 'DesiredLRP' && errors.length === 0 && spec && typeof spec === 'object')
    errors.push(...routeErrors(spec as Record<string, unknown>));
  if (errors.length === 0) return { ...base, response: { uid: request.uid, allowed: true } };
  return {
    ...base,
    response: {
      uid: request.uid,
      allowed: false,
      status: {
        code: 422,
        reason: 'Invalid',
        message: `${request.kind.kind} is invalid: ${describeErrors(errors)}`,
        details: { causes: errors.map((e) => ({ field: e.field, message: e.message, reason: 'FieldValueInvalid' })) },
      },
    },
  };
}

/** A refusal of the request with one cause (a check beyond the spec's validation). */
export function deny(
  request: AdmissionRequest,
  code: number,
  reason: string,
  message: string,
  field: string,
): AdmissionReview {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid: request.uid,
      allowed: false,
      status: { code, reason, message, details: { causes: [{ field, message, reason: 'FieldValueDuplicate' }] } },
    },
  };
}
