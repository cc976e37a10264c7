// Diego's inline image credentials (image_username / image_password of a DesiredLRP or TaskDefinition) kept where no
// cell agent can read them: a kubernetes.io/basic-auth Secret `<object name>-image-credentials` in the BBS's
// namespace, owned by the object (garbage-collected with it) and named by its spec.imageCredentialsSecret. The API
// stays Diego's: DesireLRP, DesireTask and UpdateDesiredLRP take them inline, the read routes give them back.
//
// Order of a create: the Secret, then the object naming it, then the owner reference — a cell never finds the object
// without its Secret; the Secret goes again when the object cannot be created. A Secret left by a desire that failed
// half-way (no owner yet) is taken over; every write after the first is a compare-and-swap on the Secret, so two
// desires of one guid at once leave the winner's credentials.
import type { IDesiredLRP, ITask } from '../crds/models.ts';
import {
  basicAuthSecret,
  credentialsOf,
  getSecret,
  secretPath,
  type ImageCredentials,
  type OwnerReference,
  type SecretLike,
} from '../lib/image-credentials.ts';
import { rawRequest } from '../lib/kube.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../lib/resources.ts';
import { pool } from '../lib/pool.ts';
import { exists, invalidField } from './errors.ts';
import type { Ctx } from './route.ts';

/** The Secret the BBS keeps an object's inline credentials in. */
export const credentialsSecretName = (objectName: string): string => `${objectName}-image-credentials`;
/** On those Secrets: the object they belong to (before the owner reference is set, too). */
export const LABEL_IMAGE_CREDENTIALS_FOR = 'diego.dev/image-credentials-for';

type Kind = 'DesiredLRP' | 'Task';

/** Diego's rule (models desired_lrp.go, task_definition.go): a user needs a password and the reverse. */
export function inlineCredentials(username: string, password: string): ImageCredentials | undefined {
  if (!username && !password) return undefined;
  if (!username) throw invalidField('image_username');
  if (!password) throw invalidField('image_password');
  return { username, password };
}

/** A spec as the API server gets it: never Diego's inline fields (the CRD refuses them). */
export function withoutInline<S extends { imageUsername?: string; imagePassword?: string }>(
  spec: S,
): Omit<S, 'imageUsername' | 'imagePassword'> {
  const { imageUsername: _u, imagePassword: _p, ...rest } = spec;
  return rest;
}

const ownerOf = (kind: Kind, o: { metadata: { name?: string; uid?: string } }): OwnerReference => ({
  apiVersion: 'diego.dev/v1alpha1',
  kind,
  name: o.metadata.name ?? '',
  uid: o.metadata.uid ?? '',
  controller: true,
});

/**
 * Creates an object whose inline `credentials` go to its Secret: `create(secretName)` makes the object naming it (or
 * naming none, without credentials). An object of that name already there is Diego's ResourceExists.
 */
export async function createWithCredentials<T extends { metadata: { name?: string; uid?: string } }>(
  ctx: Ctx,
  kind: Kind,
  name: string,
  credentials: ImageCredentials | undefined,
  create: (secretName?: string) => Promise<T>,
): Promise<T> {
  if (!credentials) return create();
  const secretName = credentialsSecretName(name);
  const written = await writeUnowned(ctx, kind, name, secretName, credentials);
  let created: T;
  try {
    created = await create(secretName);
  } catch (err) {
    // Ours to remove only while it is as we wrote it (a concurrent desire that won may have taken it over).
    await deleteSecret(ctx, secretName, written.metadata?.resourceVersion).catch((e: unknown) =>
      ctx.log?.warn({ err: e, secret: secretName }, 'image credentials Secret of a failed create not removed'),
    );
    throw err;
  }
  const owner = ownerOf(kind, created);
  try {
    await rawRequest(ctx.client.kc, {
      method: 'PATCH',
      path: secretPath(ctx.namespace, secretName),
      contentType: 'application/merge-patch+json',
      body: { metadata: { resourceVersion: written.metadata?.resourceVersion, ownerReferences: [owner] } },
    });
  } catch (err) {
    // Changed or removed meanwhile by a desire that lost: the object is ours, so are its credentials.
    if (!isConflict(err) && !isNotFound(err)) throw err;
    await writeOwned(ctx, secretName, credentials, owner);
  }
  return created;
}

/** The Secret without an owner yet: created, or taken over from a desire that failed before its object existed. */
async function writeUnowned(
  ctx: Ctx,
  kind: Kind,
  name: string,
  secretName: string,
  credentials: ImageCredentials,
): Promise<SecretLike> {
  const body = basicAuthSecret(ctx.namespace, secretName, credentials, {
    labels: { [LABEL_IMAGE_CREDENTIALS_FOR]: name },
  });
  try {
    return await rawRequest<SecretLike>(ctx.client.kc, { method: 'POST', path: secretPath(ctx.namespace), body });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  // The object exists: its Secret is not ours to change (Diego answers ResourceExists before writing anything).
  const object = await ctx.client.get(kind, ctx.namespace, name).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  if (object) throw exists();
  const left = await getSecret(ctx.client.kc, ctx.namespace, secretName);
  return rawRequest<SecretLike>(ctx.client.kc, {
    method: 'PUT',
    path: secretPath(ctx.namespace, secretName),
    body: { ...body, metadata: { ...body.metadata, resourceVersion: left.metadata?.resourceVersion } },
  });
}

/** The Secret with `credentials`, owned by `owner`, whatever was there (a few compare-and-swap rounds). */
async function writeOwned(
  ctx: Ctx,
  secretName: string,
  credentials: ImageCredentials,
  owner: OwnerReference,
): Promise<void> {
  const body = basicAuthSecret(ctx.namespace, secretName, credentials, {
    labels: { [LABEL_IMAGE_CREDENTIALS_FOR]: owner.name },
    ownerReferences: [owner],
  });
  for (let attempt = 1; ; attempt++) {
    try {
      const current = await getSecret(ctx.client.kc, ctx.namespace, secretName).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (!current) {
        await rawRequest(ctx.client.kc, { method: 'POST', path: secretPath(ctx.namespace), body });
      } else {
        await rawRequest(ctx.client.kc, {
          method: 'PUT',
          path: secretPath(ctx.namespace, secretName),
          body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion } },
        });
      }
      return;
    } catch (err) {
      if (attempt >= 5 || !(isConflict(err) || isAlreadyExists(err) || isNotFound(err))) throw err;
    }
  }
}

async function deleteSecret(ctx: Ctx, secretName: string, resourceVersion: string | undefined): Promise<void> {
  await rawRequest(ctx.client.kc, {
    method: 'DELETE',
    path: secretPath(ctx.namespace, secretName),
    body: {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      ...(resourceVersion ? { preconditions: { resourceVersion } } : {}),
    },
  }).catch((err: unknown) => {
    if (!isNotFound(err) && !isConflict(err)) throw err;
  });
}

/**
 * UpdateDesiredLRP's optional image_username / image_password (together, as Diego's DesiredLRPUpdate.Validate wants):
 * written to the DesiredLRP's Secret (created, owned, when it has none) before the DesiredLRP names it. Returns the
 * spec fields to patch; both empty removes the credentials (and, once the spec names no Secret, the BBS's Secret).
 */
export async function updateCredentials(
  ctx: Ctx,
  cur: IDesiredLRP,
  username: string | undefined,
  password: string | undefined,
): Promise<{ patch: { imageCredentialsSecret?: string | null }; after: () => Promise<void> }> {
  const none = { patch: {}, after: () => Promise.resolve() };
  if (username === undefined && password === undefined) return none;
  if (username === undefined) throw invalidField('image_username');
  if (password === undefined) throw invalidField('image_password');
  const secretName = credentialsSecretName(cur.metadata.name ?? '');
  const credentials = inlineCredentials(username, password);
  if (!credentials) {
    return {
      patch: cur.spec.imageCredentialsSecret ? { imageCredentialsSecret: null } : {},
      after: () => deleteSecret(ctx, secretName, undefined),
    };
  }
  await writeOwned(ctx, secretName, credentials, ownerOf('DesiredLRP', cur));
  return {
    patch: cur.spec.imageCredentialsSecret === secretName ? {} : { imageCredentialsSecret: secretName },
    after: () => Promise.resolve(),
  };
}

/** The credentials in a Secret the work names, as Diego's read routes give them (none: not set, gone, not basic-auth). */
export async function readCredentials(ctx: Ctx, secretName: string | undefined): Promise<ImageCredentials | undefined> {
  if (!secretName) return undefined;
  const secret = await getSecret(ctx.client.kc, ctx.namespace, secretName).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  if (!secret) return undefined;
  const held = credentialsOf(secret);
  return held.ok ? held.credentials : undefined;
}

/** How many Secrets a list route reads at once. */
const READ_CONCURRENCY = 8;

/**
 * Fills Diego's inline fields of each message from the Secret its object names (`set`), a few at a time; objects
 * naming none cost nothing.
 */
export async function fillCredentials<M>(
  ctx: Ctx,
  pairs: { object: IDesiredLRP | ITask; message: M }[],
  set: (message: M, credentials: ImageCredentials) => void,
): Promise<void> {
  const named = pairs.filter((p) => p.object.spec.imageCredentialsSecret);
  await pool(
    named.map((p) => async () => {
      const credentials = await readCredentials(ctx, p.object.spec.imageCredentialsSecret);
      if (credentials) set(p.message, credentials);
    }),
    READ_CONCURRENCY,
  );
}
