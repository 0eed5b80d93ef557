import type { Command } from 'commander';
import { createClient, storeConfig, type EtcdClient } from '../store/client.js';
import type { EtcdSecurityFlags } from '../store/etcd-security.js';

export interface StoreFlags extends EtcdSecurityFlags {
  etcdEndpoints?: string;
  prefix?: string;
}

/** Where etcd is and how to log in, on every command that talks to etcd; flags override the environment. */
export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('--etcd-endpoints <urls>', 'comma-separated etcd endpoints (env BERTH_ETCD_ENDPOINTS, default http://127.0.0.1:2379)')
    .option('--prefix <prefix>', 'etcd key prefix (env BERTH_PREFIX, default /berth)')
    .option('--etcd-ca <file>', 'CA certificate of etcd\'s TLS; bare endpoints become https (env BERTH_ETCD_CA)')
    .option('--etcd-cert <file>', 'client certificate for etcd, with --etcd-key (env BERTH_ETCD_CERT)')
    .option('--etcd-key <file>', 'client certificate key for etcd (env BERTH_ETCD_KEY)')
    .option('--etcd-username <name>', 'etcd user, with --etcd-password-file (env BERTH_ETCD_USERNAME)')
    .option('--etcd-password-file <file>', 'file holding the etcd user\'s password (env BERTH_ETCD_PASSWORD_FILE)');
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
