import type { Command } from 'commander';
import { createClient, storeConfig, type EtcdClient } from '../store/client.js';

export interface StoreFlags {
  etcdEndpoints?: string;
  prefix?: string;
}

/** `--etcd-endpoints` and `--prefix`, on every command that talks to etcd; they override the environment. */
export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('--etcd-endpoints <urls>', 'comma-separated etcd endpoints (env BERTH_ETCD_ENDPOINTS, default http://127.0.0.1:2379)')
    .option('--prefix <prefix>', 'etcd key prefix (env BERTH_PREFIX, default /berth)');
}

/** The store options plus where the route keys live: for the commands that read or write routes. */
export function addStoreAndRoutesOptions(cmd: Command): Command {
  return addStoreOptions(cmd).option(
    '--routes-prefix <prefix>',
    'etcd prefix of the route keys (env BERTH_ROUTES_PREFIX, default <prefix>/routes)',
  );
}

/** Runs `fn` with a client from the flags and closes it afterwards. */
export async function withClient<T>(flags: StoreFlags, fn: (client: EtcdClient) => Promise<T>): Promise<T> {
  const client = createClient(storeConfig(flags));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
