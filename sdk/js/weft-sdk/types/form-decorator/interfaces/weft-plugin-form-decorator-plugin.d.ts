/** @module Interface weft:plugin/form-decorator-plugin@0.2.0 **/
/**
 * Describes the decorator: id, version, input schema and capabilities.
 */
export function describe(): DecoratorInfo;
/**
 * Decorates a submission: `form-state` is the params so far, `input` the decorator's
 * `input` from the pipeline as JSON text (`{}` when the pipeline gives none). An
 * error refuses the submission with that message; no run is created.
 */
export function decorate(formState: Array<[string, ParamValue]>, input: string): Decoration;
export type PluginInfo = import('./weft-plugin-types.js').PluginInfo;
export type ParamValue = import('./weft-plugin-types.js').ParamValue;
/**
 * What a decorator says about itself.
 */
export interface DecoratorInfo {
  /**
   * Its id (`name`: what `spec.decorators[].id` refers to), version, description
   * and the capabilities it needs (secrets it may read, hosts it may call). Its
   * `params` and `results` are not used for decorators.
   */
  info: PluginInfo,
  /**
   * The JSON Schema (text) its `input` must match; the host validates the input
   * against it before calling `decorate`. Empty accepts any input.
   */
  inputSchema: string,
}
/**
 * The changes a decorator makes to a submission.
 */
export interface Decoration {
  /**
   * The new form state: the run's params after this decorator, in full (a param
   * left out is removed, so its default applies).
   */
  params: Array<[string, ParamValue]>,
  /**
   * Run-scoped secrets to add, `NAME` or `NAME.KEY` and value. They belong to this
   * run only, are masked like any secret, and reach a task only through a grant.
   */
  secrets: Array<[string, string]>,
}
