/** @module Interface weft:plugin/checkpoint@0.2.0 **/
/**
 * The stored value for `key`, if any.
 */
export function get(key: string): Uint8Array | undefined;
/**
 * Stores `value` under `key`.
 */
export function put(key: string, value: Uint8Array): void;
