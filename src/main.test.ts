// The binary as a user meets it on the command line: every role explains its flags with their defaults, and a wrong
// flag or value is one line naming it. Each case runs `node src/main.ts ...` as the chart and the tests do.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.LOG_FORMAT;
    execFile(process.execPath, ['src/main.ts', ...args], { cwd: repo, env, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** --help's options, each flag (its long name) with its whole entry on one line, however commander wrapped it. */
function options(help: string): Map<string, string> {
  const entries = new Map<string, string>();
  let current = '';
  for (const line of help.split('\n')) {
    const start = /^ {2}(?:-\w, )?(--[\w-]+)/.exec(line);
    if (start) {
      current = start[1]!;
      entries.set(current, line.trim());
    } else if (current && /^ {4,}\S/.test(line)) {
      entries.set(current, `${entries.get(current)} ${line.trim()}`);
    } else {
      current = '';
    }
  }
  return entries;
}

// For each role, flags the chart or the tests pass, with the default --help must show (null: none shown).
const ROLES: Record<string, Record<string, string | null>> = {
  dev: { '--no-sample': null },
  controller: {
    '--kubeconfig': null,
    '--webhook-port': '9443',
    '--webhook-cert-dir': '/tmp/k8s-webhook-server/serving-certs',
    '--metrics-address': ':8080',
    '--metrics-auth': 'auto',
    '--image-credentials-cell-agent': 'none',
    '--kube-api-qps': '1000',
    '--endpoint-slices': 'true',
    '--web-address': '""',
    '--web-auth': 'auto',
    '--shutdown-delay': '0',
  },
  'cell-agent': {
    '--cell-id': null,
    '--memory-mb': 'auto',
    '--containers': '250',
    '--stacks': 'busybox',
    '--backend': 'auto',
    '--on-sigterm': 'evacuate',
    '--evacuation-timeout': '600',
    '--insecure-docker-registry': 'none',
    '--dns-server': 'none',
    '--ops-address': '127.0.0.1:17008',
    '--max-cache-size-mb': '10000',
    '--container-proxy': null,
    '--log-app-lines': null,
    '--route-emitter-nats-servers': null,
    '--image-credentials-url': '""',
  },
  bbs: {
    '--listen': '127.0.0.1:8889',
    '--health-address': '127.0.0.1:8890',
    '--namespace': 'default',
    '--max-body-bytes': '10485760',
    '--locket-listen': '""',
    '--metrics-address': '""',
    '--metrics-auth': 'auto',
    '--insecure-http': null,
    '--tls-client-ca': null,
  },
  'install-crds': { '--kubeconfig': null },
  'route-emitter': {
    '--nats-servers': null,
    '--nats-password-file': null,
    '--metrics-address': ':8080',
    '--system-namespace': 'diego-system',
    '--direct-instance-routes': null,
    '--emit-endpoint-updated-at': null,
  },
  'delete-workloads': { '--timeout': '300' },
};

describe('diego-operator on the command line', () => {
  it.each(Object.keys(ROLES))(
    '%s --help and -h list its flags, each with a description and its default, and exit 0',
    async (role) => {
      const [long, short] = await Promise.all([run(role, '--help'), run(role, '-h')]);
      expect(long.code, long.stderr).toBe(0);
      expect(short).toEqual(long);
      expect(long.stdout).toContain(`Usage: diego-operator ${role} [options]`);
      const entries = options(long.stdout);
      for (const [flag, value] of Object.entries(ROLES[role]!)) {
        const entry = entries.get(flag);
        expect(entry, `${role} --help shows ${flag}:\n${long.stdout}`).toBeDefined();
        // The flag, then a description (more than its value placeholder).
        expect(entry!.replace(/^(?:-\w, )?--[\w-]+(?: <[^>]+>)?/, '').trim().length).toBeGreaterThan(10);
        if (value !== null) expect(entry).toContain(`(default: ${value})`);
      }
    },
    120_000,
  );

  it('help, --help and no arguments list the roles', async () => {
    const runs = await Promise.all([run('help'), run('--help'), run()]);
    for (const r of runs) {
      expect(r.code).toBe(0);
      for (const role of Object.keys(ROLES)) expect(r.stdout).toMatch(new RegExp(`^ {2}${role} {2,}\\S`, 'm'));
    }
  }, 120_000);

  it('help <role> shows that role', async () => {
    const r = await run('help', 'delete-workloads');
    expect(r.code).toBe(0);
    expect(options(r.stdout).get('--timeout')).toContain('(default: 300)');
  }, 120_000);

  it('refuses an unknown flag or command in one line, exit 2', async () => {
    const [flag, command, help] = await Promise.all([
      run('cell-agent', '--bogus'),
      run('frobnicate'),
      run('help', 'frobnicate'),
    ]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toBe("diego-operator: unknown option '--bogus' (see diego-operator cell-agent --help)\n");
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/^diego-operator: unknown command 'frobnicate'[^\n]*\n$/);
    expect(help).toEqual(command);
  }, 120_000);

  it('refuses a bad value with the message naming the flag, as before, exit 1', async () => {
    const runs = await Promise.all([
      run('cell-agent', '--on-sigterm', 'bogus'),
      run('cell-agent', '--backend=kvm'),
      run('controller', '--endpoint-slices', 'maybe'),
      run('controller', '--web-auth', 'password'),
      run('delete-workloads', '--timeout', '-1'),
    ]);
    expect(runs.map((r) => [r.code, r.stderr])).toEqual([
      [1, 'diego-operator: --on-sigterm must be evacuate or detach (got "bogus")\n'],
      [1, 'diego-operator: --backend must be auto, runc, containerd or process (got "kvm")\n'],
      [1, 'diego-operator: --endpoint-slices must be true or false (got "maybe")\n'],
      [1, 'diego-operator: --web-auth must be kubernetes, none or auto (got "password")\n'],
      [1, 'diego-operator: --timeout must be a number ≥ 0 (got "-1")\n'],
    ]);
  }, 120_000);

  it('refuses a bad address or number, naming the flag and the form it takes, exit 1', async () => {
    const cases: [string[], string][] = [
      [['controller', '--web-address=8081'], '--web-address must be host:port, e.g. 127.0.0.1:8081 (got "8081")'],
      [['controller', '--metrics-address', ':80800'], '--metrics-address must be host:port, e.g. :8080 (got ":80800")'],
      [['controller', '--webhook-port=https'], '--webhook-port must be a whole number from 0 to 65535 (got "https")'],
      [['controller', '--kube-api-burst='], '--kube-api-burst must be a whole number ≥ 0 (got "")'],
      [['controller', '--shutdown-delay=5s'], '--shutdown-delay must be a whole number from 0 to 3600 (got "5s")'],
      [['cell-agent', '--containers=lots'], '--containers must be a whole number ≥ 1 (got "lots")'],
      [
        ['cell-agent', '--ops-address=localhost'],
        '--ops-address must be host:port, e.g. 0.0.0.0:17008 (got "localhost")',
      ],
      [['bbs', '--max-body-bytes=10MB'], '--max-body-bytes must be a whole number ≥ 1 (got "10MB")'],
      [['bbs', '--listen=::1:8889'], '--listen must be host:port, e.g. 0.0.0.0:8889 (got "::1:8889")'],
      [
        ['bbs', '--health-address=127.0.0.1'],
        '--health-address must be host:port, e.g. 0.0.0.0:8890 (got "127.0.0.1")',
      ],
      [
        ['route-emitter', '--nats-servers=nats://127.0.0.1:4222', '--metrics-address=:x'],
        '--metrics-address must be host:port, e.g. :8080 (got ":x")',
      ],
    ];
    const runs = await Promise.all(cases.map(([args]) => run(...args)));
    expect(runs.map((r) => [r.code, r.stderr])).toEqual(
      cases.map(([, message]) => [1, `diego-operator: ${message}\n`]),
    );
  }, 120_000);
});

describe('flags as the chart passes them', () => {
  it('takes every address form the chart and the defaults use, and IPv6 in brackets', async () => {
    const { address } = await import('./cmd/flags.ts');
    expect(
      [
        ':8080',
        '0.0.0.0:8889',
        '127.0.0.1:0',
        '10.0.0.7:17008',
        'bbs.diego-system.svc:8889',
        '[::1]:8080',
        '[::]:9090',
      ].map((a) => address('--x', a, ':1')),
    ).toEqual([
      { host: '0.0.0.0', port: 8080 },
      { host: '0.0.0.0', port: 8889 },
      { host: '127.0.0.1', port: 0 },
      { host: '10.0.0.7', port: 17008 },
      { host: 'bbs.diego-system.svc', port: 8889 },
      { host: '::1', port: 8080 },
      { host: '::', port: 9090 },
    ]);
    for (const bad of ['8081', '127.0.0.1:', ':65536', ':-1', 'host :80', 'http://h:80', '[::1]8080', ''])
      expect(() => address('--x', bad, ':1'), bad).toThrow(`--x must be host:port, e.g. :1 (got "${bad}")`);
  });

  /** The values a role's command hands its action for `args` (the action itself not run). */
  async function parsed(command: Command, args: string[]): Promise<Record<string, unknown>> {
    let values: Record<string, unknown> = {};
    command.exitOverride().action((f: Record<string, unknown>) => {
      values = f;
    });
    await command.parseAsync(args, { from: 'user' });
    return values;
  }

  it('takes --flag=value, an empty value, repeated flags and bare booleans', async () => {
    const { controllerCommand } = await import('./cmd/controller.ts');
    expect(
      await parsed(controllerCommand(), [
        '--webhook-cert-dir=',
        '--endpoint-slices=false',
        '--image-credentials-cell-agent=system:serviceaccount:d:a',
        '--image-credentials-cell-agent',
        'system:serviceaccount:d:b',
      ]),
    ).toMatchObject({
      webhookCertDir: '',
      webhookPort: '9443',
      endpointSlices: 'false',
      imageCredentialsCellAgent: ['system:serviceaccount:d:a', 'system:serviceaccount:d:b'],
      webAddress: '',
      webAuth: 'auto',
    });
    const { cellAgentCommand } = await import('./cmd/cell-agent.ts');
    const agent = await parsed(cellAgentCommand(), [
      '--cell-id=$(NODE_NAME)',
      '--container-proxy',
      '--route-emitter-direct-instance-routes',
      '--dns-server=10.0.0.10',
      '--dns-server=10.0.0.11',
    ]);
    expect(agent).toMatchObject({
      cellId: '$(NODE_NAME)',
      containerProxy: true,
      routeEmitterDirectInstanceRoutes: true,
      dnsServer: ['10.0.0.10', '10.0.0.11'],
      insecureDockerRegistry: [],
      onSigterm: 'evacuate',
    });
    expect(agent.logAppLines).toBeUndefined();
    const { devCommand } = await import('./cmd/dev.ts');
    expect(await parsed(devCommand(), [])).toEqual({ sample: true });
    expect(await parsed(devCommand(), ['--no-sample'])).toEqual({ sample: false });
  }, 60_000);
});
