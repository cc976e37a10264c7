// Bad input against the BBS facade on a real API server: generated bodies for every route (random bytes,
// truncated and bit-flipped valid messages, wrong wire types, unknown enum values, action trees past the depth
// limit, huge strings, oversized bodies). Each must get a BBS answer — HTTP 200 with the route's protobuf
// response (an Error envelope when refused), or a plain 404 for a route we do not serve — never a 5xx, and a
// refused request must leave nothing written. Seeded: BBS_FUZZ_SEED=<n> replays a run.
import { fromBinary, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actualLRPLifecycleRoutes } from '../../src/bbs/actual-lrp-lifecycle.ts';
import { buildBbsApp, PROTOBUF } from '../../src/bbs/app.ts';
import { evacuationRoutes } from '../../src/bbs/evacuation-routes.ts';
import { bbsRoutes } from '../../src/bbs/handlers.ts';
import * as m from '../../src/bbs/models.ts';
import { readRoutes } from '../../src/bbs/read-routes.ts';
import type { Route } from '../../src/bbs/route.ts';
import { taskCellRoutes } from '../../src/bbs/task-cell-routes.ts';
import { createLogger } from '../../src/lib/log.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { eventually } from '../support/eventually.ts';
import { createNamespace, deleteNamespace, testKubeConfig } from '../support/kube.ts';

const SEED = Number(process.env.BBS_FUZZ_SEED ?? 20261126);
const CASES = Number(process.env.BBS_FUZZ_CASES ?? 1500);
const MAX_BODY = 512 * 1024;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(0, 255));
  return { next, int, pick, bytes };
}
type Rng = ReturnType<typeof prng>;

const routes: Record<string, Route> = {
  ...bbsRoutes,
  ...readRoutes,
  ...actualLRPLifecycleRoutes,
  ...evacuationRoutes,
  ...taskCellRoutes(),
};
// Paths no BBS serves: must be a plain 404.
const UNSERVED = ['/v1/actual_lrps/evacuate_everything', '/v1/no/such/route'];

const SCALAR_WIRE: Record<number, WireType> = {
  1: WireType.Bit64, // double
  2: WireType.Bit32, // float
  6: WireType.Bit64, // fixed64
  7: WireType.Bit32, // fixed32
  9: WireType.LengthDelimited, // string
  12: WireType.LengthDelimited, // bytes
  15: WireType.Bit32, // sfixed32
  16: WireType.Bit64, // sfixed64
};

function randomString(rng: Rng, huge: boolean): string {
  if (huge) return 'x'.repeat(rng.int(100_000, 300_000));
  const alphabets = ['abc-_09', 'ÄÖü€😀\u0000\u202e', '/.:%?#&=', 'A'];
  const chars = rng.pick(alphabets);
  return Array.from({ length: rng.int(0, 40) }, () => chars[rng.int(0, chars.length - 1)]).join('');
}

/** A scalar value in its right wire type, with edge values (negative, max, unknown enum numbers). */
function writeScalar(w: BinaryWriter, type: number, rng: Rng, huge: boolean): void {
  switch (type) {
    case 1:
      return void w.double(rng.pick([NaN, -1e308, 0, Infinity, 1.5]));
    case 2:
      return void w.float(rng.pick([NaN, -3e38, 0, 1.5]));
    case 3:
    case 16:
    case 18: {
      const v = rng.pick([-9223372036854775808n, -1n, 0n, 9223372036854775807n, BigInt(rng.int(0, 1e9))]);
      return void (type === 18 ? w.sint64(v) : type === 16 ? w.sfixed64(v) : w.int64(v));
    }
    case 4:
    case 6: {
      const v = rng.pick([0n, 18446744073709551615n, 5n]);
      return void (type === 6 ? w.fixed64(v) : w.uint64(v));
    }
    case 8:
      return void w.bool(rng.next() < 0.5);
    case 9:
      return void w.string(randomString(rng, huge));
    case 12:
      return void w.bytes(huge ? new Uint8Array(rng.int(100_000, 300_000)) : rng.bytes(rng.int(0, 64)));
    case 7:
      return void w.fixed32(rng.pick([0, 4294967295, 7]));
    case 13:
      return void w.uint32(rng.pick([0, 4294967295, 7, 65536]));
    case 15:
      return void w.sfixed32(rng.pick([-2147483648, -1, 2147483647]));
    case 17:
      return void w.sint32(rng.pick([-2147483648, -1, 2147483647]));
    default: // int32 and enums: negative, huge, and numbers no enum defines
      return void w.int32(rng.pick([-2147483648, -1, 0, 1, 2, 3, 99, 2147483647]));
  }
}

const wireOf = (type: number | undefined) =>
  type === undefined ? WireType.Varint : (SCALAR_WIRE[type] ?? WireType.Varint);

/** A structurally valid encoding of `desc` with random content in every field it chooses to set. */
function writeMessage(w: BinaryWriter, desc: DescMessage, rng: Rng, depth: number, hugeBudget: { left: number }) {
  for (const f of desc.fields) {
    if (rng.next() < 0.45) continue;
    const huge = hugeBudget.left > 0 && rng.next() < 0.02;
    if (huge) hugeBudget.left--;
    const repeat = f.fieldKind === 'list' || f.fieldKind === 'map' ? rng.int(0, 3) : 1;
    for (let i = 0; i < repeat; i++) writeField(w, f, rng, depth, huge, hugeBudget);
  }
}

function writeField(w: BinaryWriter, f: DescField, rng: Rng, depth: number, huge: boolean, budget: { left: number }) {
  const message =
    f.fieldKind === 'message' ||
    (f.fieldKind === 'list' && f.listKind === 'message') ||
    (f.fieldKind === 'map' && f.mapKind === 'message')
      ? f.message
      : undefined;
  if (f.fieldKind === 'map') {
    w.tag(f.number, WireType.LengthDelimited).fork();
    w.tag(1, wireOf(f.mapKey));
    writeScalar(w, f.mapKey, rng, false);
    if (message) {
      w.tag(2, WireType.LengthDelimited).fork();
      if (depth < 6) writeMessage(w, message, rng, depth + 1, budget);
      w.join();
    } else {
      const type = f.mapKind === 'scalar' ? f.scalar : undefined;
      w.tag(2, wireOf(type));
      writeScalar(w, type ?? 5, rng, huge);
    }
    return void w.join();
  }
  if (message) {
    w.tag(f.number, WireType.LengthDelimited).fork();
    if (depth < 6) writeMessage(w, message, rng, depth + 1, budget);
    return void w.join();
  }
  const type = f.fieldKind === 'scalar' || (f.fieldKind === 'list' && f.listKind === 'scalar') ? f.scalar : undefined;
  w.tag(f.number, wireOf(type));
  writeScalar(w, type ?? 5, rng, huge);
}

/** A field of the message written with a wire type it does not have, followed by garbage. */
function wrongWireType(desc: DescMessage, rng: Rng): Uint8Array {
  const w = new BinaryWriter();
  const f = desc.fields.length > 0 ? rng.pick(desc.fields) : undefined;
  const no = f?.number ?? rng.int(1, 40);
  const right: number = f ? (f.fieldKind === 'scalar' ? wireOf(f.scalar) : f.fieldKind === 'enum' ? 0 : 2) : -1;
  const wrong: WireType = rng.pick([0, 1, 2, 3, 4, 5, 6, 7].filter((t) => t !== right));
  w.tag(no, wrong);
  return new Uint8Array([...w.finish(), ...rng.bytes(rng.int(0, 12))]);
}

/** An Action nested `levels` deep through try/timeout/serial wrappers (raw bytes, no recursion limits here). */
function deepAction(levels: number, rng: Rng): Uint8Array {
  let inner = new BinaryWriter().tag(3, WireType.LengthDelimited).fork().tag(1, 2).string('/bin/true').join().finish();
  for (let i = 0; i < levels; i++) {
    const wrapper = rng.pick([6, 4, 8]); // try_action, timeout_action, serial_action: field 1 holds the action(s)
    inner = new BinaryWriter().tag(wrapper, WireType.LengthDelimited).fork().tag(1, 2).bytes(inner).join().finish();
  }
  return inner;
}

function deepDesire(path: string, levels: number, rng: Rng): Uint8Array {
  const action = deepAction(levels, rng);
  if (path === '/v1/tasks/desire.r2') {
    const def = new BinaryWriter().tag(1, 2).string('preloaded:busybox').tag(7, 2).bytes(action).finish();
    return new BinaryWriter().tag(1, 2).string('deep-task').tag(2, 2).string('fuzz').tag(3, 2).bytes(def).finish();
  }
  const tags = new BinaryWriter().tag(1, 2).string('source_id').tag(2, 2).fork().tag(1, 2).string('s').join().finish();
  const lrp = new BinaryWriter()
    .tag(1, 2)
    .string('deep-lrp')
    .tag(2, 2)
    .string('fuzz')
    .tag(3, 2)
    .string('preloaded:busybox')
    .tag(7, 2)
    .bytes(action)
    .tag(35, 2)
    .bytes(tags)
    .finish();
  return new BinaryWriter().tag(1, 2).bytes(lrp).finish();
}

interface Case {
  kind: string;
  path: string;
  body: Uint8Array;
}

function generate(rng: Rng, n: number): Case[] {
  const paths = Object.keys(routes);
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const path = rng.next() < 0.04 ? rng.pick(UNSERVED) : rng.pick(paths);
    const desc = routes[path]?.request ?? m.DesiredLRPsRequestSchema;
    const valid = () => {
      const w = new BinaryWriter();
      writeMessage(w, desc, rng, 0, { left: 1 });
      return w.finish();
    };
    const kind = rng.pick(['random', 'truncated', 'flipped', 'wiretype', 'structured', 'structured', 'deep', 'huge']);
    let body: Uint8Array;
    switch (kind) {
      case 'random':
        body = rng.bytes(rng.int(0, 2048));
        break;
      case 'truncated': {
        const v = valid();
        body = v.subarray(0, rng.int(0, Math.max(0, v.length - 1)));
        break;
      }
      case 'flipped': {
        body = valid().slice();
        for (let k = rng.int(1, 4); k > 0 && body.length > 0; k--)
          body[rng.int(0, body.length - 1)]! ^= 1 << rng.int(0, 7);
        break;
      }
      case 'wiretype':
        body = wrongWireType(desc, rng);
        break;
      case 'deep': {
        const desire = rng.pick(['/v1/desired_lrp/desire.r2', '/v1/tasks/desire.r2']);
        out.push({ kind, path: desire, body: deepDesire(desire, rng.int(33, 45), rng) });
        continue;
      }
      case 'huge':
        body = new Uint8Array(rng.int(MAX_BODY + 1, 2 * MAX_BODY));
        break;
      default:
        body = valid();
    }
    out.push({ kind, path, body });
  }
  return out;
}
const typeName = (t: number) => Object.entries(m.Error_Type).find(([, v]) => v === t)?.[0] ?? String(t);

const kc = testKubeConfig();
const client = new DiegoClient(kc);
let ns = '';
let app: ReturnType<typeof buildBbsApp>;
beforeAll(async () => {
  ns = await createNamespace(kc, 'bbs-fuzz');
  // Right after the CRDs are installed the apiserver answers 429 "storage is (re)initializing" for a moment:
  // wait for that, so the run measures the facade and not the cluster warming up.
  await eventually(async () => {
    for (const kind of ['DesiredLRP', 'ActualLRP', 'Task'] as const)
      await client.list(kind, { namespace: ns, fieldSelector: 'spec.domain=x' });
  }, 30_000);
  app = buildBbsApp({
    client,
    namespace: ns,
    systemNamespace: ns,
    logger: createLogger(process.env.LOG_LEVEL ?? 'silent'),
    maxBodyBytes: MAX_BODY,
  });
});
afterAll(async () => {
  await app?.close();
  if (ns) await deleteNamespace(kc, ns);
});

describe(`BBS facade under generated bad input (BBS_FUZZ_SEED=${SEED})`, () => {
  it(`answers ${CASES} generated requests with BBS responses and writes nothing it refused`, async () => {
    const rng = prng(SEED);
    const cases = generate(rng, CASES);
    const accepted = new Set<string>(); // guids of create requests that succeeded
    const kinds = new Map<string, number>();
    for (const [i, c] of cases.entries()) {
      const where = `case ${i} (${c.kind} → ${c.path}, ${c.body.length} bytes, BBS_FUZZ_SEED=${SEED})`;
      const r = await app.inject({
        method: 'POST',
        url: c.path,
        headers: { 'content-type': PROTOBUF },
        payload: Buffer.from(c.body),
      });
      const route = routes[c.path];
      if (!route) {
        expect(r.statusCode, where).toBe(404);
        expect(r.headers['content-type'], where).toMatch(/^text\/plain/);
        continue;
      }
      if (c.kind === 'huge' && c.path === '/v1/ping') {
        expect(r.statusCode, where).toBe(413); // PingResponse has no error field to carry the refusal
        continue;
      }
      expect(r.statusCode, where).toBe(200);
      expect(r.headers['content-type'], where).toBe(PROTOBUF);
      const res = fromBinary(route.response, r.rawPayload) as { error?: m.Error };
      const outcome = `${c.kind}:${res.error ? typeName(res.error.type) : 'ok'}`;
      kinds.set(outcome, (kinds.get(outcome) ?? 0) + 1);
      if (res.error) {
        expect(Object.values(m.Error_Type), where).toContain(res.error.type);
        // Refusals of our own making name what was wrong; only apiserver surprises are UnknownError.
        expect(res.error.type, `${where}: ${res.error.message}`).not.toBe(m.Error_Type.UnknownError);
      } else if (c.path === '/v1/desired_lrp/desire.r2' || c.path === '/v1/tasks/desire.r2') {
        const req = fromBinary(route.request, c.body) as { desiredLrp?: { processGuid: string }; taskGuid?: string };
        accepted.add(req.desiredLrp?.processGuid ?? req.taskGuid ?? '');
      }
      if (c.kind === 'deep') expect(res.error?.type, where).toBe(m.Error_Type.InvalidRequest);
      if (c.kind === 'huge') expect(res.error?.message, where).toMatch(/larger than the \d+-byte limit/);
    }
    // Nothing that was refused left a trace: every object in the namespace came from an accepted create.
    const [lrps, tasks, actuals] = await Promise.all([
      client.list('DesiredLRP', { namespace: ns }),
      client.list('Task', { namespace: ns }),
      client.list('ActualLRP', { namespace: ns }),
    ]);
    for (const d of lrps) expect(accepted, `stored DesiredLRP ${d.spec.processGuid}`).toContain(d.spec.processGuid);
    for (const t of tasks) expect(accepted, `stored Task ${t.spec.taskGuid}`).toContain(t.spec.taskGuid);
    expect(actuals).toHaveLength(0); // no controller runs here: nothing may create instances
    // Still serving.
    const ping = await app.inject({ method: 'POST', url: '/v1/ping' });
    expect(fromBinary(m.PingResponseSchema, ping.rawPayload).available).toBe(true);
    console.log(
      `bbs fuzz seed ${SEED}: ${cases.length} cases; outcomes ${[...kinds]
        .sort()
        .map(([k, n]) => `${k}=${n}`)
        .join(' ')}`,
    );
  }, 120_000);
});
