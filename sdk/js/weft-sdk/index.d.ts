// Types of weft-sdk. The raw WIT types are generated from wit/ by `jco types` into
// ./types/<world>/ (see `cargo xtask sdk-types`); this file types the SDK's wrappers.
import type * as raw from "./types/task/interfaces/weft-plugin-types.js";
import type * as rawReporter from "./types/reporter/interfaces/weft-plugin-reporter-plugin.js";
import type * as rawDecorator from "./types/form-decorator/interfaces/weft-plugin-form-decorator-plugin.js";
import type * as rawGate from "./types/gate/interfaces/weft-plugin-gate-plugin.js";

export type { raw, rawReporter, rawDecorator, rawGate };

export const WIT_VERSION: "0.2.0";

/** A param's value: a string, an array of strings or an object with string values. */
export type ParamValue = string | string[] | Record<string, string>;
export type Level = "trace" | "debug" | "info" | "warn" | "error";

export const log: {
  write(level: Level, message: string): void;
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

export class SecretError extends Error {
  secret: string;
  reason: "not-granted" | "not-found";
}
export interface Secret {
  name: string;
  reveal(): string;
}
export const secrets: {
  get(name: string): Secret;
  reveal(name: string): string;
};

export class Param {
  static string(name: string): Param;
  static array(name: string): Param;
  static object(name: string): Param;
  description(text: string): this;
  default(value: ParamValue): this;
  oneOf(values: Iterable<string>): this;
}
export class Workspace {
  constructor(name: string);
  description(text: string): this;
  readOnly(): this;
  optional(): this;
}
export class PluginInfo {
  constructor(name: string, version: string);
  description(text: string): this;
  param(param: Param): this;
  result(name: string, description?: string): this;
  resultsFixed(fixed?: boolean): this;
  secret(name: string): this;
  httpHost(host: string): this;
  workspace(workspace: Workspace): this;
  toRaw(): raw.PluginInfo;
}

export class Outcome {
  readonly kind: "success" | "warning" | "halt" | "skip" | "failure";
  readonly message: string;
  readonly exitCode: number;
  readonly results: [string, string][];
  static success(): Outcome;
  static warning(message: string): Outcome;
  static halt(message: string): Outcome;
  static skip(message: string): Outcome;
  static failure(message: string, exitCode?: number): Outcome;
  result(name: string, value: string): this;
  resultsObject(): Record<string, string>;
  readonly isOk: boolean;
  toRaw(): raw.TaskOutcome;
}
export class ParamError extends Error {}

export interface WorkspaceBinding {
  name: string;
  path: string;
  readOnly: boolean;
}
export class Context {
  params: Record<string, ParamValue>;
  workspaces: WorkspaceBinding[];
  runName: string;
  runUid: string;
  pipelineName: string;
  taskName: string;
  retryCount: number;
  retries: number;
  param(name: string): string | undefined;
  paramOr(name: string, fallback: string): string;
  paramArray(name: string): string[] | undefined;
  paramObject(name: string): Record<string, string> | undefined;
  required(name: string): string;
  workspace(name: string): string | undefined;
}

export interface Task {
  describe(): PluginInfo;
  run(ctx: Context): Outcome | Promise<Outcome>;
}
export function exportTask(task: new () => Task): {
  describe(): raw.PluginInfo;
  run(ctx: raw.TaskContext): Promise<raw.TaskOutcome>;
};

export class Delivery {
  static done(): Delivery;
  static retryAfter(ms?: number): Delivery;
  static permanent(message: string): Delivery;
}
export interface Event extends Omit<rawReporter.RunEvent, "config"> {
  config: Record<string, string>;
  terminal: boolean;
}
export interface Reporter {
  describe(): PluginInfo;
  report(event: Event): Delivery | Promise<Delivery>;
}
export function exportReporter(reporter: new () => Reporter): {
  describe(): raw.PluginInfo;
  report(event: rawReporter.RunEvent): Promise<rawReporter.Delivery>;
};

export class Refuse extends Error {}
export class DecoratorInfo {
  constructor(name: string, version: string);
  description(text: string): this;
  secret(name: string): this;
  httpHost(host: string): this;
  inputSchema(schema: object): this;
}
export class Form {
  params: Record<string, ParamValue>;
  get(name: string): ParamValue | undefined;
  str(name: string): string | undefined;
  set(name: string, value: ParamValue): void;
  remove(name: string): ParamValue | undefined;
  setSecret(name: string, value: string): void;
}
export interface Decorator {
  describe(): DecoratorInfo;
  decorate(form: Form, input: any): void | Promise<void>;
}
export function exportDecorator(decorator: new () => Decorator): {
  describe(): rawDecorator.DecoratorInfo;
  decorate(formState: [string, raw.ParamValue][], input: string): Promise<rawDecorator.Decoration>;
};

export class GateResult {
  readonly kind: "passed" | "failed" | "error";
  readonly message: string;
  static passed(message: string): GateResult;
  static failed(message: string): GateResult;
  static error(message: string): GateResult;
  readonly isPassed: boolean;
  toRaw(): rawGate.GateResult;
}
export class GateContext {
  constructor(init?: Partial<Pick<GateContext, "params" | "runName" | "runUid" | "pipelineName" | "taskName" | "sample" | "waitingSinceMs">>);
  params: Record<string, ParamValue>;
  runName: string;
  runUid: string;
  pipelineName: string;
  /** The gate's name in the pipeline. */
  taskName: string;
  /** 0 for the first evaluation of this wait, 1 for the second, ... */
  sample: number;
  /** When the gate started waiting, in milliseconds since the Unix epoch. */
  waitingSinceMs: number;
  readonly waitingSince: Date;
  param(name: string): string | undefined;
  paramOr(name: string, fallback: string): string;
  paramArray(name: string): string[] | undefined;
  paramObject(name: string): Record<string, string> | undefined;
  required(name: string): string;
}
export interface Gate {
  describe(): PluginInfo;
  evaluate(ctx: GateContext): GateResult | Promise<GateResult>;
}
export function evaluateGate(gate: Gate, ctx: GateContext): Promise<GateResult>;
export function exportGate(gate: new () => Gate): {
  describe(): raw.PluginInfo;
  evaluate(ctx: rawGate.GateContext): Promise<rawGate.GateResult>;
};
