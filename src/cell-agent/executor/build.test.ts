import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Action } from '../../crds/actions.ts';
import { eventually, failure, loopback, readBody, sh, testCell, type TestCell } from '../testing.ts';
import { buildStep } from './build.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell();
});
afterEach(() => cell.cleanup());

const sources = () => cell.logs.filter((m) => !m.line.startsWith('Exit status')).map((m) => `${m.source}: ${m.line}`);

describe('buildStep', () => {
  it('inherits log sources the way Diego does', async () => {
    const tree: Action = {
      serial: {
        logSource: 'IGNORED',
        actions: [
          sh('echo serial-child'),
          {
            parallel: { logSource: 'PAR', actions: [sh('echo parallel-child'), sh('echo own', { logSource: 'OWN' })] },
          },
          { try: { logSource: 'TRY', action: sh('echo try-child') } },
          { timeout: { logSource: 'TMO', timeoutMs: 5_000, action: sh('echo timeout-child') } },
          { codependent: { logSource: 'CO', actions: [{ try: { action: sh('echo codependent-child') } }] } },
        ],
      },
    };
    await failure(() => buildStep(tree, cell.ctx()).perform(new AbortController().signal)); // codependent always fails
    expect(sources().sort()).toEqual(
      [
        'LOG: serial-child',
        'PAR: parallel-child',
        'OWN: own',
        'TRY: try-child',
        'TMO: timeout-child',
        'CO: codependent-child',
      ].sort(),
    );
  });

  it('runs a staging-like tree: download, run and upload inside emit_progress and timeout', async () => {
    const src = path.join(cell.dir, 'lifecycle');
    await mkdir(src);
    await writeFile(
      path.join(src, 'builder'),
      '#!/bin/sh\necho "building $1"\nmkdir -p out && echo droplet > out/droplet\n',
      {
        mode: 0o755,
      },
    );
    const tgz = execFileSync('tar', ['-c', '-z', '-f', '-', '-C', src, '.']);
    let uploaded = '';
    const server = await loopback((req, res) => {
      if (req.method === 'GET') res.end(tgz);
      else void readBody(req).then((b) => ((uploaded = b.toString()), res.writeHead(201).end()));
    });
    try {
      const tree: Action = {
        timeout: {
          timeoutMs: 10_000,
          action: {
            emitProgress: {
              startMessage: 'Staging...',
              successMessage: 'Staging complete',
              failureMessagePrefix: 'Staging failed',
              action: {
                serial: {
                  actions: [
                    { download: { from: server.url('/lifecycle.tgz'), to: '/tmp/lifecycle', user: 'vcap' } },
                    { run: { path: '/tmp/lifecycle/builder', args: ['app'], user: 'vcap', logSource: 'STG' } },
                    { upload: { from: '/out/droplet', to: server.url('/droplet'), user: 'vcap' } },
                  ],
                },
              },
            },
          },
        },
      };
      await buildStep(tree, cell.ctx()).perform(new AbortController().signal);
      expect(sources()).toEqual(['LOG: Staging...', 'STG: building app', 'LOG: Staging complete']);
      expect(uploaded).toBe('droplet\n');
    } finally {
      await server.close();
    }
  });

  it('reports a failure inside emit_progress with its prefix', async () => {
    const tree: Action = {
      emitProgress: {
        failureMessagePrefix: 'Staging failed',
        action: { serial: { actions: [sh('true'), sh('test -f missing', { logSource: 'STG' }), sh('echo never')] } },
      },
    };
    const err = await failure(() => buildStep(tree, cell.ctx()).perform(new AbortController().signal));
    expect(err.message).toBe('STG: Exited with status 1');
    expect(cell.lines('stderr')).toEqual(['Staging failed: STG: Exited with status 1']);
  });

  it('rejects an action with no inner action', () => {
    expect(() => buildStep({}, cell.ctx())).toThrow('Invalid field: inner-action');
  });

  it('a cancelled tree stops everything', async () => {
    const controller = new AbortController();
    const done = buildStep(
      {
        parallel: {
          actions: [{ serial: { actions: [sh('echo a; exec sleep 30'), sh('echo never')] } }, sh('exec sleep 30')],
        },
      },
      cell.ctx(),
    ).perform(controller.signal);
    await eventually(() => cell.lines().includes('a'));
    controller.abort();
    const err = await failure(() => done);
    expect(err).toMatchObject({ code: 'aggregate', message: '' });
    expect(cell.lines()).not.toContain('never');
  });
});
