/** Work-queue keys: `env/<name>` and `group/<name>`. */
export type QueueKey = { kind: 'env' | 'group'; name: string };

export const envKey = (name: string) => `env/${name}`;
export const groupKey = (name: string) => `group/${name}`;

export function parseQueueKey(key: string): QueueKey | undefined {
  const m = /^(env|group)\/(.+)$/.exec(key);
  return m ? { kind: m[1] as 'env' | 'group', name: m[2]! } : undefined;
}
