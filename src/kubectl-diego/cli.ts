// kubectl diego: Diego's cfdot as a kubectl plugin. The commands read the Diego objects (and the Leases of the
// system namespace) from the API server, hand them to the pure functions of views.ts, logs.ts and placement.ts,
// and print what those return. Every failure is one line on stderr and exit code 1.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { KubeConfig } from '@kubernetes/client-node';
import type { DiegoKind, KindMap } from '../lib/resources.ts';
import { DiegoClient, isNotFound, resourcePath } from '../lib/resources.ts';
import { KubeError, loadKubeConfig, rawRequest, RequestTimeoutError } from '../lib/kube.ts';
import { type Lease, leasePath } from '../lib/lease.ts';
import { presenceOf } from '../lifecycle/actual-lrp.ts';
import { remove } from '../lifecycle/ops.ts';
import type { IActualLRP } from '../crds/models.ts';
import { cellStreams, describe } from './log-stream.ts';
import {
  formatLogLine,
  keepInstance,
  type LogLine,
  type LogSource,
  type LogTarget,
  logSources,
  lrpLogTarget,
  mergeByTime,
  ReorderBuffer,
  taskLogTarget,
  vouchedFor,
} from './logs.ts';
import { OUTPUT_FORMATS, type OutputFormat, renderData, renderTable, useColour } from './output.ts';
import { explainPlacement, PLACEMENT_HEADER, placementRows, placementSummary } from './placement.ts';
import {
  ACTUAL_LRPS,
  actualLRPRecords,
  CELL_STATES,
  cellRecords,
  CELLS,
  DESIRED_LRPS,
  desiredLRPRecords,
  DOMAINS,
  domainRecords,
  LOCKS,
  lockRecords,
  parseTaskState,
  tableRows,
  TASKS,
  taskRecords,
  type View,
} from './views.ts';

/** Where the command writes, and what it knows of its terminal (a seam for tests). */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  isTTY: boolean;
  env: Record<string, string | undefined>;
  now(): number;
  /** Resolves when the user interrupts (Ctrl-C): a follower stops then. */
  interrupted: Promise<void>;
}

/** A failure told to the user as it is: one line, exit code 1. */
export class CliError extends Error {}

interface Globals {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  output: string;
  systemNamespace: string;
  requestTimeout: string;
}

interface Session {
  kc: KubeConfig;
  client: DiegoClient;
  /** The namespace to read (undefined: all of them, -A). */
  namespace: string | undefined;
  /** The namespace named by -n or the context (for commands about one object). */
  objectNamespace: string;
  systemNamespace: string;
  output: OutputFormat;
  colour: boolean;
  timeoutMs: number;
  server: string;
}

function session(g: Globals, io: Io): Session {
  if (!OUTPUT_FORMATS.includes(g.output as OutputFormat)) {
    throw new CliError(`--output must be one of ${OUTPUT_FORMATS.join(', ')} (got "${g.output}")`);
  }
  const timeoutS = Number(g.requestTimeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
    throw new CliError(`--request-timeout must be a number of seconds (got "${g.requestTimeout}")`);
  }
  let kc: KubeConfig;
  try {
    kc = loadKubeConfig(g.kubeconfig);
  } catch (err) {
    throw new CliError(`cannot load the kubeconfig${g.kubeconfig ? ` ${g.kubeconfig}` : ''}: ${describe(err)}`);
  }
  if (g.context) {
    if (!kc.getContextObject(g.context)) throw new CliError(`context "${g.context}" is not in the kubeconfig`);
    kc.setCurrentContext(g.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new CliError('the kubeconfig has no current cluster (kubectl config use-context ...)');
  // client-node's stand-in when it found no kubeconfig at all (as kubectl's localhost:8080).
  if (!g.kubeconfig && cluster.server === 'http://localhost:8080') {
    throw new CliError('no kubeconfig: give --kubeconfig, set $KUBECONFIG, or write ~/.kube/config');
  }
  const objectNamespace = g.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return {
    kc,
    client: new DiegoClient(kc),
    namespace: g.allNamespaces ? undefined : objectNamespace,
    objectNamespace,
    systemNamespace: g.systemNamespace,
    output: g.output as OutputFormat,
    colour: useColour(io.isTTY, io.env),
    timeoutMs: timeoutS * 1000,
    server: cluster.server,
  };
}

/** Every object of a kind (in one namespace, or all), page by page. */
async function list<K extends DiegoKind>(
  s: Session,
  kind: K,
  namespace: string | undefined,
  fieldSelector?: string,
): Promise<KindMap[K][]> {
  return listAt<KindMap[K]>(s, resourcePath(kind, namespace), fieldSelector);
}

async function listAt<T>(s: Session, path: string, fieldSelector?: string): Promise<T[]> {
  const items: T[] = [];
  let cont: string | undefined;
  do {
    const q = new URLSearchParams({ limit: '500' });
    if (fieldSelector) q.set('fieldSelector', fieldSelector);
    if (cont) q.set('continue', cont);
    const page = await rawRequest<{ items: T[]; metadata?: { continue?: string } }>(s.kc, {
      method: 'GET',
      path: `${path}?${q.toString()}`,
      timeoutMs: s.timeoutMs,
    });
    items.push(...page.items);
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return items;
}

/** The Leases of the system namespace (none when it does not exist yet). */
async function systemLeases(s: Session): Promise<Lease[]> {
  return listAt<Lease>(s, leasePath(s.systemNamespace)).catch((err: unknown) => {
    if (isNotFound(err)) return [];
    throw err;
  });
}

async function getOrUndefined<K extends DiegoKind>(s: Session, kind: K, name: string): Promise<KindMap[K] | undefined> {
  try {
    return await rawRequest<KindMap[K]>(s.kc, {
      method: 'GET',
      path: resourcePath(kind, s.objectNamespace, name),
      timeoutMs: s.timeoutMs,
    });
  } catch (err) {
    if (isNotFound(err) && !(await servesDiego(s))) throw err;
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Whether the API server serves the Diego kinds (a 404 on an object then means the object is missing). */
async function servesDiego(s: Session): Promise<boolean> {
  return rawRequest(s.kc, { method: 'GET', path: '/apis/diego.dev/v1alpha1', timeoutMs: s.timeoutMs }).then(
    () => true,
    () => false,
  );
}

const fieldSel = (field: string, value: string) => `spec.${field}=${value.replace(/[\\,=]/g, (c) => `\\${c}`)}`;

function print<R extends object>(
  s: Session,
  io: Io,
  view: View<R>,
  records: R[],
  what: string,
  namespaced: boolean,
): void {
  if (s.output !== 'table') return io.out(renderData(records, s.output));
  if (records.length === 0) {
    const where = !namespaced ? '' : s.namespace === undefined ? '' : ` in ${s.namespace} namespace`;
    return io.err(`No ${what} found${where}.\n`);
  }
  const { header, rows } = tableRows(view, records, io.now(), namespaced && s.namespace === undefined);
  io.out(renderTable(header, rows, s.colour));
}

// ---- logs -------------------------------------------------------------------------------------------------------

/** How often `logs -f` looks for cells that started running the app's instances since it began. */
const LOGS_RESCAN_MS = 3000;

interface LogsOptions {
  opsTrustCellUrls?: boolean;
  follow?: boolean;
  recent?: boolean;
  instance?: number;
  opsCa?: string;
  opsInsecureSkipTlsVerify?: boolean;
}

async function logTarget(s: Session, name: string, instance: number | undefined): Promise<LogTarget> {
  const d = await getOrUndefined(s, 'DesiredLRP', name);
  if (d) {
    const actuals = await list(s, 'ActualLRP', s.objectNamespace, fieldSel('processGuid', d.spec.processGuid));
    return lrpLogTarget(d, actuals, instance);
  }
  const t = await getOrUndefined(s, 'Task', name);
  if (t) return taskLogTarget(t);
  throw new CliError(`no DesiredLRP or Task named "${name}" in namespace "${s.objectNamespace}"`);
}

/**
 * Whether a cell's log stream may receive the kubeconfig's token (vouchedFor): its URL's host is an address of the
 * Node of the same name. Plain-HTTP streams (a local agent on loopback) never get it anyway. Says why when not.
 */
async function vouch(s: Session, io: Io, src: LogSource): Promise<boolean> {
  if (!src.url.startsWith('https:')) return true;
  let addresses: string[] | undefined;
  let why = '';
  try {
    const node = await rawRequest<{ status?: { addresses?: { address: string }[] } }>(s.kc, {
      method: 'GET',
      path: `/api/v1/nodes/${encodeURIComponent(src.cellId)}`,
    });
    addresses = (node.status?.addresses ?? []).map((a) => a.address);
  } catch (err) {
    why = ` (cannot read node ${src.cellId}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
  if (vouchedFor(src.url, addresses)) return true;
  io.err(
    `warning: not sending your token to cell ${src.cellId}'s log stream at ${new URL(src.url).host}: it is not an ` +
      `address of node ${src.cellId}${why}; pass --ops-trust-cell-urls if you trust the Cells' spec.opsUrl\n`,
  );
  return false;
}

async function logs(s: Session, io: Io, name: string, o: LogsOptions): Promise<void> {
  const target = await logTarget(s, name, o.instance);
  const what = `${target.kind === 'Task' ? 'task' : 'desiredlrp'} ${target.name}`;
  if (target.cellIds.length === 0) {
    const which = o.instance === undefined ? '' : ` at index ${o.instance}`;
    throw new CliError(`${what} has no instance${which} on a cell: there are no lines to read yet`);
  }
  const follow = o.follow === true;
  if (!follow && o.recent === false)
    throw new CliError('--no-recent needs -f: without -f the kept lines are the answer');
  // Without -f the buffered lines are the answer; with -f they come first unless only new lines are asked for.
  const recent = !follow || o.recent !== false;
  const { sources, problems } = logSources(target, await list(s, 'Cell', undefined), { follow, recent });
  if (sources.length === 0) throw new CliError(`cannot read the lines of ${what}: ${problems.join('; ') || 'no cell'}`);
  for (const p of problems) io.err(`warning: ${p}\n`);
  const stop = new AbortController();
  const vouched = new Map<string, boolean>();
  for (const src of sources) vouched.set(src.cellId, o.opsTrustCellUrls === true || (await vouch(s, io, src)));
  const streams = await cellStreams(s.kc, {
    caFile: o.opsCa,
    insecure: o.opsInsecureSkipTlsVerify,
    signal: stop.signal,
    sendTokenTo: (src) => vouched.get(src.cellId) === true,
  });
  const keep = (e: LogLine) => keepInstance(e, o.instance);
  try {
    if (!follow) {
      const read = await Promise.allSettled(
        sources.map(async (src) => {
          const lines: LogLine[] = [];
          await streams.read(src, (e) => keep(e) && lines.push(e));
          return lines;
        }),
      );
      const failures = read.flatMap((r) => (r.status === 'rejected' ? [describe(r.reason)] : []));
      if (failures.length === read.length) throw new CliError(failures[0]);
      for (const f of failures) io.err(`warning: ${f}\n`);
      const lines = mergeByTime(read.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])));
      io.out(lines.map((e) => formatLogLine(e, s.colour) + '\n').join(''));
      return;
    }
    // Following: lines are held a moment so that those of several cells come out in time order.
    const buffer = new ReorderBuffer(sources.length > 1 ? 300 : 0);
    const emit = (flush = false) => {
      const due = buffer.release(io.now(), flush);
      if (due.length > 0) io.out(due.map((e) => formatLogLine(e, s.colour) + '\n').join(''));
    };
    const ticker = setInterval(() => emit(), 100);
    // Each cell read at most once at a time; a stream that ends (its agent restarted) is read again, from the last
    // line seen, and cells that start running an instance later (a restart elsewhere, a scale-up) join, from when
    // following began: `cf logs` follows an app, not the cells it happened to be on.
    const reading = new Set<string>();
    const lastSeen = new Map<string, bigint>();
    const since = BigInt(io.now()) * 1_000_000n;
    let failed = 0;
    let allFailed: () => void = () => undefined;
    const initialFailed = new Promise<void>((resolve) => (allFailed = resolve));
    const read = (src: LogSource, initial: boolean) => {
      reading.add(src.cellId);
      const after = initial ? undefined : (lastSeen.get(src.cellId) ?? since);
      void streams
        .read(src, (e) => {
          const at = BigInt(e.timestamp);
          if (after !== undefined && at <= after) return;
          if ((lastSeen.get(src.cellId) ?? 0n) < at) lastSeen.set(src.cellId, at);
          if (keep(e)) buffer.push(e, io.now());
        })
        .catch((err: unknown) => {
          if (stop.signal.aborted) return;
          io.err(`warning: ${describe(err)}\n`);
          if (initial && ++failed === sources.length) allFailed();
        })
        .finally(() => reading.delete(src.cellId));
    };
    for (const src of sources) read(src, true);
    // One look at a time, the next a while after the last one ended; none once following stops.
    let rescan: NodeJS.Timeout | undefined;
    const look = async () => {
      const now = logSources(await logTarget(s, name, o.instance), await list(s, 'Cell', undefined), {
        follow: true,
        recent: true,
      });
      for (const src of now.sources) {
        if (reading.has(src.cellId) || stop.signal.aborted) continue;
        if (!vouched.has(src.cellId)) vouched.set(src.cellId, o.opsTrustCellUrls === true || (await vouch(s, io, src)));
        read(src, false);
      }
    };
    const schedule = () => {
      if (stop.signal.aborted) return;
      rescan = setTimeout(() => {
        look()
          .catch(() => undefined) // the next look may succeed; the streams already open go on
          .finally(schedule);
      }, LOGS_RESCAN_MS);
    };
    schedule();
    const gaveUp = await Promise.race([io.interrupted.then(() => false), initialFailed.then(() => true)]);
    stop.abort();
    clearInterval(ticker);
    clearTimeout(rescan);
    emit(true);
    if (gaveUp) throw new CliError(`no log stream of ${what} could be read`);
  } finally {
    stop.abort();
    await streams.close().catch(() => undefined);
  }
}

// ---- explain-placement, retire-actual-lrp -------------------------------------------------------------------------

async function explainPlacementOf(s: Session, io: Io, name: string): Promise<void> {
  const actual = await getOrUndefined(s, 'ActualLRP', name);
  if (!actual) throw new CliError(`no ActualLRP named "${name}" in namespace "${s.objectNamespace}"`);
  const [cells, leases, actuals, tasks, desireds] = await Promise.all([
    list(s, 'Cell', undefined),
    systemLeases(s),
    list(s, 'ActualLRP', undefined),
    list(s, 'Task', undefined),
    list(s, 'DesiredLRP', undefined),
  ]);
  const owner = actual.metadata.ownerReferences?.find((o) => o.kind === 'DesiredLRP');
  const desired =
    desireds.find((d) => owner && d.metadata.uid === owner.uid) ??
    desireds.find(
      (d) => d.metadata.namespace === actual.metadata.namespace && d.spec.processGuid === actual.spec.processGuid,
    );
  const report = explainPlacement({ actual, desired, cells, leases, actuals, tasks, desireds, now: io.now() });
  if (s.output !== 'table') return io.out(renderData(report, s.output));
  io.out(placementSummary(report).join('\n') + '\n\n');
  if (report.cells.length === 0) return io.out('No cells are registered.\n');
  io.out(renderTable(PLACEMENT_HEADER, placementRows(report), s.colour));
}

async function retire(s: Session, io: Io, processGuid: string, index: number): Promise<void> {
  const items = await list(s, 'ActualLRP', s.objectNamespace, fieldSel('processGuid', processGuid));
  const target = items.find((a: IActualLRP) => a.spec.index === index && presenceOf(a) === 'ORDINARY');
  if (!target) {
    throw new CliError(
      `no ActualLRP of process guid "${processGuid}" at index ${index} in namespace "${s.objectNamespace}"`,
    );
  }
  const outcome = await remove(s.client, target, { asSeen: false });
  if (outcome.outcome !== 'done') {
    throw new CliError(`actuallrp ${target.metadata.name} was not retired (${JSON.stringify(outcome)})`);
  }
  const cell = target.status?.cellId || target.spec.cellId;
  io.out(
    `actuallrp ${target.metadata.namespace}/${target.metadata.name} retired` +
      (cell ? `: cell ${cell} stops its container;` : ':') +
      ` the converger starts a new instance at index ${index}\n`,
  );
}

// ---- the command line -------------------------------------------------------------------------------------------

const int = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a whole number >= 0.`);
  return n;
};

/** Runs `kubectl diego <argv>`; resolves to the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const program = new Command('kubectl diego')
    .description("Diego's cfdot as a kubectl plugin: cells, LRPs, tasks, domains, locks, logs and placements")
    .option('--kubeconfig <path>', 'path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use')
    .option('-n, --namespace <namespace>', "the namespace (default: the context's, else default)")
    .option('-A, --all-namespaces', 'list across all namespaces')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .option('--system-namespace <namespace>', 'where the cell presences, domains and locks live', 'diego-system')
    .option('--request-timeout <seconds>', 'how long to wait for each API request', '30')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (t) => io.out(t),
      writeErr: (t) => io.err(t),
      outputError: (t, write) => write(t.split('\n').filter(Boolean).join(' ') + '\n'),
    });

  let run: (() => Promise<void>) | undefined;
  let current: Session | undefined;
  const on = (name: string, describeIt: string) =>
    program
      .command(name)
      .description(describeIt)
      .exitOverride()
      .configureOutput({ outputError: (t, write) => write(t.split('\n').filter(Boolean).join(' ') + '\n') });
  const withSession = (cmd: Command, f: (s: Session) => Promise<void>) => {
    run = () => f((current = session(cmd.optsWithGlobals<Globals>(), io)));
  };

  on('cells', 'the registered cells: zone, capacity, rootfs and presence (cfdot cells)').action((_o, cmd: Command) =>
    withSession(cmd, async (s) => {
      const [cells, leases] = await Promise.all([list(s, 'Cell', undefined), systemLeases(s)]);
      print(s, io, CELLS, cellRecords(cells, leases, io.now()), 'cells', false);
    }),
  );
  on('cell-states', 'what each cell has left and runs: free/total resources, instances, tasks (cfdot cell-states)')
    .alias('cell-state')
    .action((_o, cmd: Command) =>
      withSession(cmd, async (s) => {
        const [cells, leases] = await Promise.all([list(s, 'Cell', undefined), systemLeases(s)]);
        print(s, io, CELL_STATES, cellRecords(cells, leases, io.now()), 'cells', false);
      }),
    );
  on('desired-lrps', 'the DesiredLRPs (cfdot desired-lrps)').action((_o, cmd: Command) =>
    withSession(cmd, async (s) => {
      const items = await list(s, 'DesiredLRP', s.namespace);
      print(s, io, DESIRED_LRPS, desiredLRPRecords(items), 'desired LRPs', true);
    }),
  );
  on('actual-lrps', 'the ActualLRPs: state, presence, cell, address (cfdot actual-lrps)')
    .option('--process-guid <guid>', 'only the instances of this process guid')
    .option('--cell <id>', 'only the instances on this cell')
    .action((o: { processGuid?: string; cell?: string }, cmd: Command) =>
      withSession(cmd, async (s) => {
        const items = await list(
          s,
          'ActualLRP',
          s.namespace,
          o.processGuid ? fieldSel('processGuid', o.processGuid) : undefined,
        );
        const records = actualLRPRecords(items, { processGuid: o.processGuid, cellId: o.cell });
        print(s, io, ACTUAL_LRPS, records, 'actual LRPs', true);
      }),
    );
  on('tasks', 'the Tasks (cfdot tasks)')
    .option('--domain <domain>', 'only the tasks of this domain')
    .option('--state <state>', 'only the tasks in this state: Pending, Running, Completed or Resolving')
    .action((o: { domain?: string; state?: string }, cmd: Command) =>
      withSession(cmd, async (s) => {
        const state = o.state === undefined ? undefined : parseTaskState(o.state);
        if (o.state !== undefined && !state) {
          throw new CliError(`--state must be one of Pending, Running, Completed, Resolving (got "${o.state}")`);
        }
        const items = await list(s, 'Task', s.namespace);
        print(s, io, TASKS, taskRecords(items, { domain: o.domain, state }), 'tasks', true);
      }),
    );
  on('domains', 'the BBS domains and whether they are fresh (cfdot domains)').action((_o, cmd: Command) =>
    withSession(cmd, async (s) => {
      print(s, io, DOMAINS, domainRecords(await systemLeases(s), io.now()), 'domains', false);
    }),
  );
  on('locks', "the locks the operator's components hold: leader Leases and their holders (cfdot locks)").action(
    (_o, cmd: Command) =>
      withSession(cmd, async (s) => {
        print(s, io, LOCKS, lockRecords(await systemLeases(s), io.now()), 'locks', false);
      }),
  );
  on('logs', "the log lines of a DesiredLRP's instances or of a Task, read from the cells that run them")
    .argument('<name>', 'a DesiredLRP or Task name')
    .option('-f, --follow', 'keep printing new lines (until Ctrl-C)')
    .option('--recent', 'print the lines the cells kept and exit (the default without -f)')
    .option('--no-recent', 'with -f: only new lines')
    .option('--instance <index>', 'only the lines of this instance index', int('--instance'))
    .option('--ops-ca <file>', "PEM file of the CA of the cell agents' ops certificates")
    .option(
      '--ops-insecure-skip-tls-verify',
      "accept the cell agents' ops certificates unchecked (self-signed): whoever is on the path may read your token",
    )
    .option(
      '--ops-trust-cell-urls',
      "send your token to every cell's advertised log stream, even one whose host is not an address of its Node",
    )
    .action((name: string, o: LogsOptions, cmd: Command) => withSession(cmd, (s) => logs(s, io, name, o)));
  on('explain-placement', 'where the auction would place an ActualLRP now, and why, cell by cell')
    .argument('<actuallrp>', 'an ActualLRP name')
    .action((name: string, _o, cmd: Command) => withSession(cmd, (s) => explainPlacementOf(s, io, name)));
  on(
    'retire-actual-lrp',
    "stops an instance: its cell stops the container and the converger starts a new one (cfdot retire-actual-lrp; Cloud Controller's restart instance)",
  )
    .argument('<process-guid>', 'the process guid')
    .argument('<index>', 'the instance index', int('index'))
    .action((guid: string, index: number, _o, cmd: Command) => withSession(cmd, (s) => retire(s, io, guid, index)));

  if (argv.length === 0) {
    io.out(program.helpInformation());
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    if (!run) {
      io.err(program.helpInformation());
      return 1;
    }
    await run();
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 1;
    }
    io.err(`error: ${errorLine(err, current?.server)}\n`);
    return 1;
  }
}

/** Any failure as one line: the user's mistake, the API server's answer, or why the cluster could not be reached. */
export function errorLine(err: unknown, server: string | undefined): string {
  if (err instanceof CliError) return err.message;
  if (err instanceof KubeError) {
    const body = err.body as { message?: string } | undefined;
    const message = (typeof body === 'object' && body?.message) || err.message;
    if (err.code === 404 && /could not find the requested resource/.test(message))
      return `${server ?? 'the API server'} does not serve diego.dev/v1alpha1: are the Diego CRDs installed?`;
    return message.replace(/\s*\n\s*/g, ' ');
  }
  const code = (err as { code?: unknown } | undefined)?.code;
  if (err instanceof RequestTimeoutError || typeof code === 'string' || err instanceof AggregateError) {
    return `cannot reach the cluster at ${server ?? 'the API server'}: ${describe(err)}`;
  }
  return describe(err);
}
