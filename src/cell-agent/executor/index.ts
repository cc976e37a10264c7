// Diego's executor: the action language run against a container backend. The rep builds a step tree from an
// LRP's or Task's actions with buildStep and performs it; the executor knows only containers and actions.
export { buildStep, DEFAULT_MAX_CONCURRENT_DOWNLOADS, DEFAULT_MAX_CONCURRENT_UPLOADS } from './build.ts';
export type { ExecutorContext } from './build.ts';
export type { Ready, Step } from './step.ts';
export { Semaphore } from './step.ts';
export {
  StepError,
  aggregateErrors,
  isCancellation,
  toStepError,
  CANCELLED_MESSAGE,
  CODEPENDENT_EXITED_MESSAGE,
  EXCEEDED_GRACEFUL_SHUTDOWN_MESSAGE,
  EXIT_TIMEOUT_MESSAGE,
} from './errors.ts';
export type { StepErrorCode } from './errors.ts';
export { LogStreamer, DEFAULT_LOG_SOURCE, MAX_MESSAGE_SIZE, discardLogs, noopLogger } from './log.ts';
export type { ExecutorLogger, LogMessage, LogSink, LogStream } from './log.ts';
export { DEFAULT_GRACEFUL_SHUTDOWN_MS, networkingEnv, RunStep } from './steps/run.ts';
export type { NetworkInfo, NetworkPortMapping } from './steps/run.ts';
export { CodependentStep } from './steps/codependent.ts';
export type { CodependentOptions } from './steps/codependent.ts';
export { DownloadStep } from './steps/download.ts';
export { UploadStep } from './steps/upload.ts';
export { EmitProgressStep } from './steps/emit-progress.ts';
export { ParallelStep } from './steps/parallel.ts';
export { SerialStep } from './steps/serial.ts';
export { TimeoutStep } from './steps/timeout.ts';
export { TryStep } from './steps/try.ts';
export {
  checkTargetFor,
  DEFAULT_CHECK_TIMEOUT_MS,
  DEFAULT_LIVENESS_INTERVAL_MS,
  DEFAULT_STARTUP_INTERVAL_MS,
  HEALTH_LOG_SOURCE,
  HealthCheckError,
  HealthCheckStep,
  httpCheck,
  probesFromChecks,
  startupThenLiveness,
  tcpCheck,
} from './health.ts';
export type { CheckTarget, HealthMonitorOptions, Probe } from './health.ts';
export { goDuration, byteSize } from './format.ts';
