import type { Decorator, Delivery, Event, Form, Gate, GateResult, Outcome, ParamValue, Reporter, Task } from "../index.js";

export type Logs = [string, string][];
export function runTask(
  task: new () => Task,
  options?: { params?: Record<string, ParamValue>; workspaces?: Record<string, string>; secrets?: Record<string, string>; checkpoints?: Record<string, string> },
): Promise<{ outcome: Outcome; logs: Logs; checkpoints: Record<string, string> }>;
export function report(reporter: new () => Reporter, event: Partial<Event>, options?: { secrets?: Record<string, string> }): Promise<{ outcome: Delivery; logs: Logs }>;
export function decorate(
  decorator: new () => Decorator,
  options?: { params?: Record<string, ParamValue>; input?: unknown; secrets?: Record<string, string> },
): Promise<{ outcome: string | undefined; form: Form; logs: Logs }>;
export function evaluate(
  gate: new () => Gate,
  options?: { params?: Record<string, ParamValue>; secrets?: Record<string, string>; sample?: number; waitingSinceMs?: number; runName?: string; taskName?: string },
): Promise<{ outcome: GateResult; logs: Logs }>;
