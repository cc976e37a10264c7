// Diego's inline image credentials through the BBS facade on a real API server: DesireLRP, DesireTask and
// UpdateDesiredLRP take image_username / image_password as Diego's clients send them; they land in a basic-auth Secret
// the object names and owns (never in the custom resource every cell agent reads); the read routes give them back;
// a half-given pair is refused and changes nothing; a desire that fails leaves no Secret and does not touch the
// winner's; the garbage collector removes the Secret with its object.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { credentialsSecretName } from '../../src/bbs/image-credentials.ts';
import * as m from '../../src/bbs/models.ts';
import { objectName } from '../../src/bbs/translate.ts';
import {
  basicAuthSecret,
  credentialsOf,
  getSecret,
  secretPath,
  type SecretLike,
} from '../../src/lib/image-credentials.ts';
import { rawRequest } from '../../src/lib/kube.ts';
import { isNotFound } from '../../src/lib/resources.ts';
import { bbsCaller, desiredLRPInit, taskRequestInit, useBbsApp } from '../support/bbs-call.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('bbs-image-credentials');
const { app, bbs } = useBbsApp(env, { expectNoError: true });
const call = bbsCaller(app); // answers with Diego's errors instead of failing on them

const guid = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;
const secretOrNone = (name: string): Promise<SecretLike | undefined> =>
  getSecret(env.client.kc, env.ns, name).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
const held = (s: SecretLike | undefined) => {
  const c = s && credentialsOf(s);
  return c?.ok ? c.credentials : undefined;
};
const desire = (processGuid: string, more: Parameters<typeof desiredLRPInit>[2] = {}) =>
  call(
    '/v1/desired_lrp/desire.r2',
    m.DesireLRPRequestSchema,
    { desiredLrp: desiredLRPInit(processGuid, 1, { rootFs: 'docker:///private/app', ...more }) },
    m.DesiredLRPLifecycleResponseSchema,
  );
const getDesired = async (processGuid: string) =>
  (
    await bbs(
      '/v1/desired_lrps/get_by_process_guid.r2',
      m.DesiredLRPByProcessGuidRequestSchema,
      { processGuid },
      m.DesiredLRPResponseSchema,
    )
  ).desiredLrp;
const update = (processGuid: string, username?: string, password?: string) =>
  call(
    '/v1/desired_lrp/update',
    m.UpdateDesiredLRPRequestSchema,
    {
      processGuid,
      update: {
        ...(username !== undefined ? { optionalImageUsername: { case: 'imageUsername', value: username } } : {}),
        ...(password !== undefined ? { optionalImagePassword: { case: 'imagePassword', value: password } } : {}),
      },
    },
    m.DesiredLRPLifecycleResponseSchema,
  );

describe('inline image credentials through the BBS', () => {
  it('DesireLRP keeps them in a Secret the DesiredLRP names and owns; reads and UpdateDesiredLRP see them', async () => {
    const pg = guid('creds-lrp');
    expect((await desire(pg, { imageUsername: 'deploy', imagePassword: 's3cret' })).error).toBeUndefined();

    const name = objectName(pg);
    const d = await env.client.get('DesiredLRP', env.ns, name);
    const secretName = credentialsSecretName(name);
    expect(d.spec.imageCredentialsSecret).toBe(secretName);
    // Nothing of them in the resource every cell agent can read.
    expect(JSON.stringify(d)).not.toContain('s3cret');
    expect(d.spec).not.toHaveProperty('imageUsername');
    expect(d.spec).not.toHaveProperty('imagePassword');

    const secret = await secretOrNone(secretName);
    expect(secret?.type).toBe('kubernetes.io/basic-auth');
    expect(held(secret)).toEqual({ username: 'deploy', password: 's3cret' });
    expect(secret?.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'DesiredLRP', name, uid: d.metadata.uid, controller: true }),
    ]);

    // Diego's read routes give them back, the list too.
    expect(await getDesired(pg)).toMatchObject({ imageUsername: 'deploy', imagePassword: 's3cret' });
    const listed = await bbs(
      '/v1/desired_lrps/list.r3',
      m.DesiredLRPsRequestSchema,
      { processGuids: [pg] },
      m.DesiredLRPsResponseSchema,
    );
    expect(listed.desiredLrps.map((l) => [l.imageUsername, l.imagePassword])).toEqual([['deploy', 's3cret']]);

    // A rotation goes to the same Secret; the DesiredLRP still names it.
    expect((await update(pg, 'deploy2', 'rotated')).error).toBeUndefined();
    expect(held(await secretOrNone(secretName))).toEqual({ username: 'deploy2', password: 'rotated' });
    expect(await getDesired(pg)).toMatchObject({ imageUsername: 'deploy2', imagePassword: 'rotated' });

    // Half a pair is Diego's InvalidRequest, and changes nothing.
    const half = await update(pg, 'only-a-user');
    expect(half.error?.type).toBe(m.Error_Type.InvalidRequest);
    expect(held(await secretOrNone(secretName))).toEqual({ username: 'deploy2', password: 'rotated' });

    // Both empty removes them: the DesiredLRP names no Secret, and the BBS's Secret goes.
    expect((await update(pg, '', '')).error).toBeUndefined();
    expect((await env.client.get('DesiredLRP', env.ns, name)).spec.imageCredentialsSecret).toBeUndefined();
    expect(await secretOrNone(secretName)).toBeUndefined();
    expect(await getDesired(pg)).toMatchObject({ imageUsername: '', imagePassword: '' });

    // Given again on an LRP that had none: a Secret owned by it, named by it.
    expect((await update(pg, 'again', 'pw')).error).toBeUndefined();
    expect((await env.client.get('DesiredLRP', env.ns, name)).spec.imageCredentialsSecret).toBe(secretName);
    expect((await secretOrNone(secretName))?.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'DesiredLRP', uid: d.metadata.uid }),
    ]);

    // Removing the LRP removes its credentials (the garbage collector follows the owner reference).
    await bbs(
      '/v1/desired_lrp/remove',
      m.RemoveDesiredLRPRequestSchema,
      { processGuid: pg },
      m.DesiredLRPLifecycleResponseSchema,
    );
    await eventually(async () => expect(await secretOrNone(secretName)).toBeUndefined(), 120_000);
  });

  it('DesireTask keeps them in a Secret the Task names; the task routes give them back', async () => {
    const tg = guid('creds-task');
    const req = taskRequestInit(tg);
    req.taskDefinition = {
      ...req.taskDefinition,
      rootFs: 'docker:///private/job',
      imageUsername: 'ci',
      imagePassword: 'pw',
    };
    await bbs('/v1/tasks/desire.r2', m.DesireTaskRequestSchema, req, m.TaskLifecycleResponseSchema);
    const name = objectName(tg);
    const t = await env.client.get('Task', env.ns, name);
    expect(t.spec.imageCredentialsSecret).toBe(credentialsSecretName(name));
    expect(JSON.stringify(t)).not.toContain('"pw"');
    const secret = await secretOrNone(credentialsSecretName(name));
    expect(held(secret)).toEqual({ username: 'ci', password: 'pw' });
    expect(secret?.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'Task', name, uid: t.metadata.uid }),
    ]);
    const got = await bbs(
      '/v1/tasks/get_by_task_guid.r3',
      m.TaskByGuidRequestSchema,
      { taskGuid: tg },
      m.TaskResponseSchema,
    );
    expect(got.task?.taskDefinition).toMatchObject({ imageUsername: 'ci', imagePassword: 'pw' });
  });

  it('refuses half a pair and writes nothing; a second desire of one guid leaves the first one’s Secret', async () => {
    const pg = guid('creds-half');
    const refused = await desire(pg, { imageUsername: 'deploy' });
    expect(refused.error?.type).toBe(m.Error_Type.InvalidRequest);
    expect(refused.error?.message).toContain('image_password');
    await expect(env.client.get('DesiredLRP', env.ns, objectName(pg))).rejects.toSatisfy(isNotFound);
    expect(await secretOrNone(credentialsSecretName(objectName(pg)))).toBeUndefined();

    const won = guid('creds-twice');
    expect((await desire(won, { imageUsername: 'first', imagePassword: 'one' })).error).toBeUndefined();
    const again = await desire(won, { imageUsername: 'attacker', imagePassword: 'two' });
    expect(again.error?.type).toBe(m.Error_Type.ResourceExists);
    expect(held(await secretOrNone(credentialsSecretName(objectName(won))))).toEqual({
      username: 'first',
      password: 'one',
    });
  });

  it('a Secret left by a desire that failed half-way is taken over by the next desire of that guid', async () => {
    // As if a BBS died between writing the Secret and creating the DesiredLRP: a Secret with no owner.
    const pg = guid('creds-left');
    const name = objectName(pg);
    await rawRequest(env.client.kc, {
      method: 'POST',
      path: secretPath(env.ns),
      body: basicAuthSecret(env.ns, credentialsSecretName(name), { username: 'stale', password: 'old' }),
    });
    expect((await desire(pg, { imageUsername: 'fresh', imagePassword: 'new' })).error).toBeUndefined();
    const d = await env.client.get('DesiredLRP', env.ns, name);
    const secret = await secretOrNone(credentialsSecretName(name));
    expect(held(secret)).toEqual({ username: 'fresh', password: 'new' });
    expect(secret?.metadata?.ownerReferences).toEqual([expect.objectContaining({ uid: d.metadata.uid })]);
  });
});
