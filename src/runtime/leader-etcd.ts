import { hostname } from 'node:os';
import type { Campaign } from 'etcd3';
import type { EtcdClient } from '../store/client.js';
import type { LeaderElection } from './leader.js';

/**
 * Leader election through etcd3's election recipe, under `<prefix>/leader/`: the key of the
 * campaign is bound to a lease, so a crashed leader's claim expires after `ttlSeconds`.
 */
export class EtcdLeaderElection implements LeaderElection {
  private campaign: Campaign | undefined;
  readonly identity = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  constructor(
    private readonly client: EtcdClient,
    private readonly ttlSeconds = 10,
  ) {}

  elect(signal: AbortSignal, onLost: (err: Error) => void): Promise<void> {
    const election = this.client.etcd.namespace(`${this.client.prefix}/leader/`).election('controller', this.ttlSeconds);
    const campaign = election.campaign(this.identity);
    this.campaign = campaign;
    return new Promise((resolve, reject) => {
      let elected = false;
      campaign.on('elected', () => {
        elected = true;
        resolve();
      });
      campaign.on('error', (err: Error) => {
        if (signal.aborted) return;
        if (elected) onLost(err);
        else reject(err);
      });
      signal.addEventListener('abort', () => reject(new Error('stopped before elected')), { once: true });
    });
  }

  async resign(): Promise<void> {
    await this.campaign?.resign().catch(() => undefined);
  }
}
