// BBS errors travel inside the 200 response (field 1 of every response message), never as HTTP status codes
// (bbs-api.md §1.5). This maps our failures and the apiserver's to Diego's Error.Type.
import { create } from '@bufbuild/protobuf';
import { KubeError } from '../lib/kube.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../lib/resources.ts';
import { MovedOnError } from '../lifecycle/ops.ts';
import { ErrorSchema, Error_Type, type Error as BbsError } from './models.ts';

/** A failure that already knows its BBS error type (validation, state transitions, lookups). */
export class BbsFailure extends Error {
  readonly type: Error_Type;
  constructor(type: Error_Type, message: string) {
    super(message);
    this.type = type;
  }
}

export const notFound = () => new BbsFailure(Error_Type.ResourceNotFound, 'the requested resource could not be found');
export const exists = () => new BbsFailure(Error_Type.ResourceExists, 'the requested resource already exists');
export const invalidField = (...fields: string[]) =>
  new BbsFailure(Error_Type.InvalidRequest, fields.map((f) => `Invalid field: ${f}`).join(', '));

/** The apiserver's field errors (422 Invalid) as Diego's "Invalid field: x" list. */
function invalidFromStatus(err: KubeError): BbsFailure {
  const causes = (err.body as { details?: { causes?: { field?: string; message?: string }[] } } | undefined)?.details
    ?.causes;
  const fields = (causes ?? []).map((c) => `${c.field ?? ''} ${c.message ?? ''}`.trim()).filter(Boolean);
  return fields.length > 0 ? invalidField(...fields) : new BbsFailure(Error_Type.InvalidRequest, err.message);
}

export function toBbsError(err: unknown): BbsError {
  const f = classify(err);
  return create(ErrorSchema, { type: f.type, message: f.message });
}

function classify(err: unknown): BbsFailure {
  if (err instanceof BbsFailure) return err;
  if (isNotFound(err)) return notFound();
  if (isAlreadyExists(err)) return exists();
  if (isConflict(err) || err instanceof MovedOnError)
    return new BbsFailure(Error_Type.ResourceConflict, 'the requested resource is in a conflicting state');
  if (err instanceof KubeError && (err.code === 422 || err.code === 400)) return invalidFromStatus(err);
  return new BbsFailure(Error_Type.UnknownError, 'the request failed for an unknown reason');
}
