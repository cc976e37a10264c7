// Declarative health checks (bbs models/check_definition.proto).
import { z } from 'zod';
import { doc, port } from './common.ts';

export const TCPCheck = doc(
  z.object({
    port: port('Container port to connect to.'),
    connectTimeoutMs: doc(z.int().min(0).optional(), 'Connect timeout per attempt in ms (0: the cell default, 1 s).'),
    intervalMs: doc(z.int().min(0).optional(), 'Time between attempts in ms (0: the cell default).'),
  }),
  'Healthy when a TCP connection to the port succeeds.',
);

export const HTTPCheck = doc(
  z.object({
    port: port('Container port to send the request to.'),
    requestTimeoutMs: doc(z.int().min(0).optional(), 'Timeout per request in ms (0: the cell default, 1 s).'),
    path: doc(z.string().max(4096).optional(), "Request path (default '/')."),
    intervalMs: doc(z.int().min(0).optional(), 'Time between requests in ms (0: the cell default).'),
  }),
  'Healthy when GET http://<container>:<port><path> answers 200.',
);

export const Check = doc(
  z.object({ tcpCheck: TCPCheck.optional(), httpCheck: HTTPCheck.optional() }),
  'One check: set exactly one of tcpCheck or httpCheck.',
  [
    {
      rule: '(has(self.tcpCheck) ? 1 : 0) + (has(self.httpCheck) ? 1 : 0) == 1',
      message: 'a check needs exactly one of tcpCheck or httpCheck',
    },
  ],
);

export const CheckDefinition = doc(
  z.object({
    checks: doc(
      z.array(Check).max(16).optional(),
      'Startup and liveness checks: the instance is RUNNING once all pass and CRASHED when one fails later.',
    ),
    logSource: doc(z.string().max(256).optional(), "Log source of check output (default 'HEALTH')."),
    readinessChecks: doc(
      z.array(Check).max(16).optional(),
      'Readiness checks: they decide whether a running instance is routable.',
    ),
  }),
  'Declarative health checks, run by the cell; preferred over the legacy monitor action.',
);
