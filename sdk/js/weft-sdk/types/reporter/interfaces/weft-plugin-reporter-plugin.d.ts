/** @module Interface weft:plugin/reporter-plugin@0.2.0 **/
/**
 * Describes the reporter: its config keys (as params) and the capabilities it needs
 * (the token secret's default name, the forge's default host).
 */
export function describe(): PluginInfo;
/**
 * Sends one event to the forge (one request).
 */
export function report(event: RunEvent): Delivery;
export type PluginInfo = import('./weft-plugin-types.js').PluginInfo;
/**
 * A desired status in weft's vocabulary.
 * # Variants
 * 
 * ## `"pending"`
 * 
 * Not started yet: queued, scheduled, waiting for approval or gates.
 * ## `"running"`
 * 
 * Started and not terminal (running, stopping, halting, running finally,
 * cancelling).
 * ## `"succeeded"`
 * 
 * Terminal: succeeded (also when halted early; see `run-event.halted-by`).
 * ## `"succeeded-with-warnings"`
 * 
 * Terminal: succeeded, with at least one warning.
 * ## `"completed"`
 * 
 * Terminal: completed (some tasks skipped or failed but were allowed to).
 * ## `"failed"`
 * 
 * Terminal: failed.
 * ## `"timed-out"`
 * 
 * Terminal: a timeout passed.
 * ## `"errored"`
 * 
 * Terminal: weft or a limit ended it (not the work itself).
 * ## `"rejected"`
 * 
 * Terminal: an approval or gate rejected it.
 * ## `"cancelled"`
 * 
 * Terminal: cancelled.
 * ## `"skipped"`
 * 
 * Terminal, task-level only: the task did not run.
 */
export type Status = 'pending' | 'running' | 'succeeded' | 'succeeded-with-warnings' | 'completed' | 'failed' | 'timed-out' | 'errored' | 'rejected' | 'cancelled' | 'skipped';
/**
 * The task that ended a run early with a successful halt.
 */
export interface Halt {
  /**
   * The task's name.
   */
  task: string,
  /**
   * The message it halted with.
   */
  message: string,
}
/**
 * A task-level event (only sent to reporters configured for task events).
 */
export interface TaskEvent {
  /**
   * The task's name in the pipeline.
   */
  name: string,
  /**
   * The task's desired status.
   */
  status: Status,
  /**
   * The task's reason (`Halted`, a skip reason, a limit, ...); may be empty.
   */
  reason: string,
  /**
   * The task's message (failure or warning text); may be empty.
   */
  message: string,
}
/**
 * One event to report: the run's (or one task's) desired status.
 */
export interface RunEvent {
  /**
   * The run's name.
   */
  runName: string,
  /**
   * The run's unique id.
   */
  runUid: string,
  /**
   * The pipeline's name.
   */
  pipelineName: string,
  /**
   * The run's desired status.
   */
  status: Status,
  /**
   * The run's reason (`Halted`, `CancelledRunFinally`, ...); may be empty.
   */
  reason: string,
  /**
   * Set when a task halted the run early (status `succeeded`, reason `Halted`).
   */
  haltedBy?: Halt,
  /**
   * The run's message (what failed or errored, ...); may be empty.
   */
  message: string,
  /**
   * A human description suggested by the host; empty lets the reporter describe
   * the status itself.
   */
  description: string,
  /**
   * Set for a task-level event; `none` for a run-level event.
   */
  task?: TaskEvent,
  /**
   * The reporter's configuration from the pipeline or command line (`url`,
   * `project`, `sha`, `ref`, `context`, `target-url`, `token-secret`, ...).
   * Secret values are never here, only secret names.
   */
  config: Array<[string, string]>,
  /**
   * 0 for the first delivery attempt of this event, 1 for the first retry, ...
   */
  attempt: number,
}
/**
 * What a reporter asks the host to do next. The host owns the retry policy: a
 * reporter never computes a backoff of its own.
 */
export type Delivery = DeliveryDone | DeliveryRetryAfter | DeliveryPermanent;
/**
 * Delivered, or the forge already has that state.
 */
export interface DeliveryDone {
  tag: 'done',
}
/**
 * A transient failure. The value is the wait the server named, in milliseconds
 * (`Retry-After`, a rate-limit reset), or 0 when it named none. The host retries
 * after the larger of its own backoff (exponential, with jitter) and this wait,
 * so 0 means "retry with the host's backoff".
 */
export interface DeliveryRetryAfter {
  tag: 'retry-after',
  val: bigint,
}
/**
 * Will never succeed as configured; the message says why.
 */
export interface DeliveryPermanent {
  tag: 'permanent',
  val: string,
}
