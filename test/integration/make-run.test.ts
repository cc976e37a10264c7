// `make run` (diego-operator dev) as a user meets it: it prints the sample app's URLs, the app answers on them,
// the BBS API answers ping, and Ctrl-C stops everything and removes the control plane it started.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { exitOf, running } from '../support/child.ts';
import { eventually } from '../support/eventually.ts';
import { alive, descendants, killAlive, type Proc } from '../support/proc-tree.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

describe('make run', () => {
  it('runs the sample app, which answers on the printed URLs, serves the BBS API, and leaves nothing after Ctrl-C', async () => {
    const env = { ...process.env };
    delete env.DIEGO_TEST_KUBECONFIG; // its own control plane, as on a fresh machine
    const dev = spawn(process.execPath, ['src/main.ts', 'dev'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dev.stdout.on('data', (c: Buffer) => (out += c.toString()));
    dev.stderr.on('data', () => undefined);
    let started: Proc[] = [];
    // SIGKILLed, it cannot stop what it started (the control plane, the app's runc processes): those go first.
    const killAll = () => {
      killAlive([...started, ...(running(dev) ? descendants(dev.pid!) : [])]);
      dev.kill('SIGKILL');
    };
    onTestFinished(killAll); // a test that times out never reaches its finally
    try {
      await eventually(() => expect(out).toContain('Press Ctrl-C to stop'), 180_000);
      const apps = [...out.matchAll(/curl (http:\/\/127\.0\.0\.1:\d+\/)\s+# the sample app "web"/g)].map((m) => m[1]!);
      expect(apps).toHaveLength(3);
      for (const url of apps) expect(await (await fetch(url)).text()).toBe('hello from diego-operator\n');

      const ping = /curl -sX POST (http:\/\/127\.0\.0\.1:\d+\/v1\/ping)/.exec(out)?.[1];
      const res = await fetch(ping!, { method: 'POST' });
      expect(Buffer.from(await res.arrayBuffer())).toEqual(Buffer.from([0x08, 0x01])); // PingResponse{available: true}

      // The same BBS over mutual TLS, with the client certificate make run printed; without one it is refused.
      const tls = /--cacert (\S+) --cert (\S+) --key (\S+) (https:\/\/127\.0\.0\.1:\d+\/v1\/ping)/.exec(out);
      expect(tls, out).not.toBeNull();
      const [, cacert, cert, key, tlsPing] = tls as unknown as [string, string, string, string, string];
      const post = (withCert: boolean) =>
        new Promise<Buffer>((resolve, reject) => {
          const req = httpsRequest(
            tlsPing,
            {
              method: 'POST',
              ca: readFileSync(cacert),
              ...(withCert ? { cert: readFileSync(cert), key: readFileSync(key) } : {}),
            },
            (r) => {
              const chunks: Buffer[] = [];
              r.on('data', (c: Buffer) => chunks.push(c));
              r.on('end', () => resolve(Buffer.concat(chunks)));
            },
          );
          req.on('error', reject);
          req.end();
        });
      expect(await post(true)).toEqual(Buffer.from([0x08, 0x01]));
      await expect(post(false)).rejects.toThrow();

      const metrics = /curl (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(out)?.[1];
      // Diego's metrics, refreshed by the converger's periodic pass (30 s).
      await eventually(
        async () => expect(await (await fetch(`${metrics}/metrics`)).text()).toMatch(/^LRPsRunning\S* 3$/m),
        60_000,
      );
      const kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)?.[1];
      expect(existsSync(kubeconfig!)).toBe(true);

      // The operator's tools it points at: kubectl diego (on the printed PATH) and the live web view.
      const plugin = spawnSync(path.join(repo, 'bin', 'kubectl-diego'), ['--kubeconfig', kubeconfig!, 'cell-states'], {
        encoding: 'utf8',
        timeout: 120_000, // it blocks this process (and the test's own timeout) while it runs
      });
      expect(plugin.status, plugin.stderr).toBe(0);
      expect(plugin.stdout).toMatch(/^dev-cell-0\s+z1\s/m);
      const web = /open (http:\/\/127\.0\.0\.1:\d+\/?)\s/.exec(out)?.[1];
      expect(web, out).toBeDefined();
      expect(JSON.stringify(await (await fetch(new URL('/api/view', web))).json())).toContain('dev-cell-0');

      // Everything it started (the control plane, the app's runc processes, ...) stops with it.
      started = descendants(dev.pid!);
      expect(started.map((p) => p.comm)).toEqual(expect.arrayContaining(['etcd', 'kube-apiserver']));
      dev.kill('SIGINT');
      expect(await exitOf(dev, 120_000, 'make run (after SIGINT)')).toEqual([0, null]);
      expect(existsSync(kubeconfig!)).toBe(false); // the control plane's directory is gone
      expect(started.filter(alive)).toEqual([]);
    } finally {
      killAll();
    }
  }, 300_000);
});
