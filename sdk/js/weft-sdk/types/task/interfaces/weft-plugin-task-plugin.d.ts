/** @module Interface weft:plugin/task-plugin@0.2.0 **/
/**
 * Describes the task: params, results and the capabilities it needs.
 */
export function describe(): PluginInfo;
/**
 * Runs the task once.
 */
export function run(ctx: TaskContext): TaskOutcome;
export type PluginInfo = import('./weft-plugin-types.js').PluginInfo;
export type TaskContext = import('./weft-plugin-types.js').TaskContext;
export type TaskOutcome = import('./weft-plugin-types.js').TaskOutcome;
