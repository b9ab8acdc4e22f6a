/** @module Interface weft:plugin/log@0.2.0 **/
/**
 * Writes one log line. Lines past the task's log budget end the task as errored.
 */
export function write(level: Level, message: string): void;
/**
 * Severity of a log line.
 * # Variants
 * 
 * ## `"trace"`
 * 
 * ## `"debug"`
 * 
 * ## `"info"`
 * 
 * ## `"warn"`
 * 
 * ## `"error"`
 */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
