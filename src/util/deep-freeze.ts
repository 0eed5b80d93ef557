/**
 * Freezes `x` and everything it holds. For objects handed out as they are held, not copied: a
 * caller that tried to change one would change every later reader's view, and fails at once
 * instead (ES modules run in strict mode, where writing a frozen property throws).
 */
export function deepFreeze<T>(x: T): T {
  if (x && typeof x === 'object' && !Object.isFrozen(x)) {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}
