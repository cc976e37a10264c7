#!/usr/bin/env node
// kubectl diego: the kubectl plugin (docs/kubectl-diego.md). On the PATH as `kubectl-diego`, kubectl runs it for
// `kubectl diego ...`.
import { main } from './kubectl-diego/cli.ts';

const interrupted = new Promise<void>((resolve) => {
  process.once('SIGINT', () => resolve());
  process.once('SIGTERM', () => resolve());
});
const code = await main(process.argv.slice(2), {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  isTTY: process.stdout.isTTY,
  env: process.env,
  now: () => Date.now(),
  interrupted,
});
// Keep-alive connections to the API server would hold the process open: the answer is out, so exit.
process.exit(code);
