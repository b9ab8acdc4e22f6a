/** @module Interface weft:plugin/gate-plugin@0.2.0 **/
/**
 * Describes the gate: its params and the capabilities it needs (secrets, hosts).
 * Its `results` are not used for gates.
 */
export function describe(): PluginInfo;
/**
 * Evaluates the condition once.
 */
export function evaluate(ctx: GateContext): GateResult;
export type PluginInfo = import('./weft-plugin-types.js').PluginInfo;
export type ParamValue = import('./weft-plugin-types.js').ParamValue;
/**
 * Everything one evaluation of a gate knows about where it runs.
 */
export interface GateContext {
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
   * The gate's name in the pipeline (the name of the task that refers to it).
   */
  taskName: string,
  /**
   * The gate's params, substituted and with defaults applied, as a task's are.
   */
  params: Array<[string, ParamValue]>,
  /**
   * Which evaluation of this wait this is: 0 for the first, 1 for the second, ...
   */
  sample: number,
  /**
   * When the gate started waiting (its first sample was due), in milliseconds since
   * the Unix epoch (UTC). The same for every sample of one wait.
   */
  waitingSinceMs: bigint,
}
/**
 * What one sample found. The message says what was seen; the host logs it and shows
 * it with the gate's status (masked like any plugin output).
 */
export type GateResult = GateResultPassed | GateResultFailed | GateResultError;
/**
 * The condition holds now.
 */
export interface GateResultPassed {
  tag: 'passed',
  val: string,
}
/**
 * The condition does not hold yet: sample again at the next interval.
 */
export interface GateResultFailed {
  tag: 'failed',
  val: string,
}
/**
 * The condition could not be checked (a transport failure, a bad param, ...).
 * Counted as a failed sample, and logged as an error.
 */
export interface GateResultError {
  tag: 'error',
  val: string,
}
