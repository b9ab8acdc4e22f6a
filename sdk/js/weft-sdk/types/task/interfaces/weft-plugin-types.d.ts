/** @module Interface weft:plugin/types@0.2.0 **/
/**
 * The value of a pipeline parameter, typed like Tekton's params.
 */
export type ParamValue = ParamValueStr | ParamValueArray | ParamValueObject;
/**
 * A plain string.
 */
export interface ParamValueStr {
  tag: 'str',
  val: string,
}
/**
 * An array of strings (`$(params.p[*])`).
 */
export interface ParamValueArray {
  tag: 'array',
  val: Array<string>,
}
/**
 * An object with string values (`$(params.p.key)`).
 */
export interface ParamValueObject {
  tag: 'object',
  val: Array<[string, string]>,
}
/**
 * The declared type of a parameter.
 * # Variants
 * 
 * ## `"str"`
 * 
 * ## `"array"`
 * 
 * ## `"object"`
 */
export type ParamType = 'str' | 'array' | 'object';
/**
 * One parameter a plugin accepts.
 */
export interface ParamSpec {
  name: string,
  description: string,
  type: ParamType,
  /**
   * The value used when the pipeline does not set the param. `none` makes it required.
   */
  'default'?: ParamValue,
  /**
   * When non-empty, the only string values allowed.
   */
  'enum': Array<string>,
}
/**
 * One result a plugin may produce.
 */
export interface ResultSpec {
  name: string,
  description: string,
}
/**
 * A workspace a plugin wants mounted.
 */
export interface WorkspaceSpec {
  name: string,
  description: string,
  readOnly: boolean,
  optional: boolean,
}
/**
 * What a plugin needs from the host. The host grants the intersection of this and
 * the operator's policy; anything else is denied.
 */
export interface Capabilities {
  /**
   * Names of secrets the plugin may ask for.
   */
  secrets: Array<string>,
  /**
   * Hosts (`host`, `host:port` or `*.suffix`) the plugin may call over HTTP(S).
   */
  httpHosts: Array<string>,
  /**
   * Workspaces the plugin reads or writes.
   */
  workspaces: Array<WorkspaceSpec>,
}
/**
 * What a plugin says about itself.
 */
export interface PluginInfo {
  name: string,
  version: string,
  description: string,
  params: Array<ParamSpec>,
  results: Array<ResultSpec>,
  /**
   * True when `results` is the complete set: references to any other result are
   * validation errors.
   */
  resultsFixed: boolean,
  capabilities: Capabilities,
}
/**
 * A workspace as the plugin sees it.
 */
export interface WorkspaceBinding {
  name: string,
  /**
   * The guest path at which the workspace is preopened.
   */
  path: string,
  readOnly: boolean,
}
/**
 * Everything a task invocation knows about where it runs.
 */
export interface TaskContext {
  runName: string,
  runUid: string,
  pipelineName: string,
  taskName: string,
  /**
   * 0 for the first attempt, 1 for the first retry, ...
   */
  retryCount: number,
  /**
   * How many retries the pipeline allows this task.
   */
  retries: number,
  params: Array<[string, ParamValue]>,
  workspaces: Array<WorkspaceBinding>,
}
/**
 * A failure with its exit code.
 */
export interface Failure {
  message: string,
  exitCode: number,
}
/**
 * How a task ended.
 */
export type Ending = EndingSuccess | EndingWarning | EndingHalt | EndingSkip | EndingFailure;
/**
 * Done.
 */
export interface EndingSuccess {
  tag: 'success',
}
/**
 * Done, but worth a look (passed with warnings).
 */
export interface EndingWarning {
  tag: 'warning',
  val: string,
}
/**
 * Done, and the rest of the run is not needed (early successful exit).
 */
export interface EndingHalt {
  tag: 'halt',
  val: string,
}
/**
 * The task decided it does not apply.
 */
export interface EndingSkip {
  tag: 'skip',
  val: string,
}
/**
 * It failed.
 */
export interface EndingFailure {
  tag: 'failure',
  val: Failure,
}
/**
 * A task's ending with the results it produced.
 */
export interface TaskOutcome {
  ending: Ending,
  results: Array<[string, string]>,
}
