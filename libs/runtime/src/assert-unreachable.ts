/**
 * Ends an exhaustive `switch`: a new enum member (an error code, an effect) that is not handled
 * fails to compile here, so it cannot ship unmapped.
 */
export function assertUnreachable(value: never): never {
  throw new Error(`unhandled case: ${String(value)}`);
}
