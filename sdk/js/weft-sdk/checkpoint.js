// Checkpoints (tasks only): durable values per (run, task, key), so a retry or a re-run
// skips work already done. A module of its own so that reporters and decorators, whose
// worlds do not import weft:plugin/checkpoint, never import it.

import { get as getRaw, put as putRaw } from "weft:plugin/checkpoint@0.2.0";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The stored value for `key` as bytes, or undefined. */
export function get(key) {
  return getRaw(key);
}

/** The stored value for `key` as text, or undefined. */
export function getString(key) {
  const value = getRaw(key);
  return value === undefined ? undefined : decoder.decode(value);
}

/** Stores `value` (a string or bytes) under `key`; throws when the host cannot. */
export function put(key, value) {
  try {
    putRaw(key, typeof value === "string" ? encoder.encode(value) : value);
  } catch (err) {
    throw new Error(`cannot store checkpoint \`${key}\`: ${err?.payload ?? err}`);
  }
}

/** Runs `work` once per run: its text result is stored under `key`, and later attempts
 * get the stored value without calling `work`. */
export function checkpoint(key, work) {
  const stored = getString(key);
  if (stored !== undefined) return stored;
  const value = String(work());
  put(key, value);
  return value;
}
