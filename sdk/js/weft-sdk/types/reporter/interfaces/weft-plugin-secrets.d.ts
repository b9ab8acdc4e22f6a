/** @module Interface weft:plugin/secrets@0.2.0 **/
/**
 * Gets a handle to a secret by name (`NAME` or `NAME.KEY`).
 */
export function get(name: string): Secret;
/**
 * Why a secret could not be had.
 * # Variants
 * 
 * ## `"not-granted"`
 * 
 * The secret exists or not, but this task was not granted it.
 * ## `"not-found"`
 * 
 * The task was granted the name but no value is configured.
 */
export type SecretError = 'not-granted' | 'not-found';

export class Secret {
  /**
   * This type does not have a public constructor.
   */
  private constructor();
  /**
  * The secret's name.
  */
  name(): string;
  /**
  * The secret's value.
  */
  reveal(): string;
}
