import { jobRunRequestSchema, type JobRunRequest } from '../api/index.js';
import type { EtcdClient } from './client.js';

/**
 * `berth run env NAME JOB` requests: key `<prefix>/job-requests/<env>/<job>`, value JSON
 * `{"requestedAt"}`. The leader starts one run per request (it records the request's
 * `requestedAt` in the job's status before it starts the run), then deletes the key.
 */
export function jobRequestsPrefix(prefix: string): string {
  return `${prefix}/job-requests/`;
}

export function jobRequestKey(prefix: string, env: string, job: string): string {
  return `${jobRequestsPrefix(prefix)}${env}/${job}`;
}

/** The environment a request key concerns, or undefined for any other key. */
export function envOfJobRequestKey(prefix: string, key: string): string | undefined {
  const rest = key.startsWith(jobRequestsPrefix(prefix)) ? key.slice(jobRequestsPrefix(prefix).length).split('/') : [];
  return rest.length === 2 && rest[0] ? rest[0] : undefined;
}

/** An environment's requests by job; a value that is not a request is ignored (and cleared with the others). */
export async function readJobRequests(client: EtcdClient, env: string): Promise<Record<string, JobRunRequest>> {
  const prefix = `${jobRequestsPrefix(client.prefix)}${env}/`;
  const all = await client.call(`list ${prefix}`, () => client.etcd.getAll().prefix(prefix).strings());
  const out: Record<string, JobRunRequest> = {};
  for (const [key, raw] of Object.entries(all)) {
    try {
      const parsed = jobRunRequestSchema.safeParse(JSON.parse(raw));
      if (parsed.success) out[key.slice(prefix.length)] = parsed.data;
    } catch {
      // not JSON: ignored like a request that does not parse
    }
  }
  return out;
}

export async function writeJobRequest(client: EtcdClient, env: string, job: string, request: JobRunRequest): Promise<void> {
  const key = jobRequestKey(client.prefix, env, job);
  await client.put(`put ${key}`, client.etcd.put(key).value(JSON.stringify(request)));
}

export async function clearJobRequest(client: EtcdClient, env: string, job: string): Promise<void> {
  const key = jobRequestKey(client.prefix, env, job);
  await client.delete(`delete ${key}`, client.etcd.delete().key(key));
}

/** Every request of an environment that is gone. */
export async function clearJobRequests(client: EtcdClient, env: string): Promise<void> {
  const prefix = `${jobRequestsPrefix(client.prefix)}${env}/`;
  await client.delete(`delete ${prefix}`, client.etcd.delete().prefix(prefix));
}
