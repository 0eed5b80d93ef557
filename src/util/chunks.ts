/**
 * `items` in order, cut into runs of at most `maxCount` items whose `size`s add up to at most
 * `maxBytes`; an item bigger than `maxBytes` goes alone.
 */
export function chunksOf<T>(items: readonly T[], maxCount: number, maxBytes: number, size: (item: T) => number): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item);
    if (chunk.length > 0 && (chunk.length >= maxCount || bytes + n > maxBytes)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += n;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/**
 * `items` in rounds where no id comes twice: the first item of each id, then the second of
 * each, and so on, each round in input order. Done round after round, the items of one id go in
 * their input order, and those of different ids together.
 */
export function roundsById<T>(items: readonly T[], id: (item: T) => string): T[][] {
  const rounds: T[][] = [];
  const seen = new Map<string, number>();
  for (const item of items) {
    const key = id(item);
    const round = seen.get(key) ?? 0;
    seen.set(key, round + 1);
    (rounds[round] ??= []).push(item);
  }
  return rounds;
}
