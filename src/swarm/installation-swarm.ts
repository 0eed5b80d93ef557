import { AdapterError } from '../api/errors.js';
import type { SwarmApi } from './api.js';
import { SwarmReads } from './swarm-reads.js';
import { LABEL_ENV, LABEL_INSTALLATION } from './labels.js';
import type { DockerServiceSpec } from './service-spec.js';

/**
 * The Swarm as one installation may change it: every service it creates or updates, and every
 * node it claims, carries `berth.installation=<id>`; a change to an object that carries another
 * installation's id is refused here, whatever the caller planned. The planner already leaves such
 * objects out (reconcile/ownership.ts): this is the fence that holds if it ever did not.
 */
export class InstallationSwarm extends SwarmReads {
  constructor(
    inner: SwarmApi,
    readonly installation: string,
  ) {
    super(inner);
  }

  /** A claim carries the installation label; a release removes both labels. */
  async updateNodeLabels(id: string, version: number, labels: Record<string, string>): Promise<void> {
    // nodeIndex: the controller's cache answers from memory (inspectNode would ask Docker).
    const node = (await this.inner.nodeIndex()).get(id);
    if (node && node.labels[LABEL_ENV] !== undefined) this.refuseForeign('updateNode', `node ${node.hostname}`, node.labels);
    const next = { ...labels };
    if (next[LABEL_ENV] !== undefined) next[LABEL_INSTALLATION] = this.installation;
    else delete next[LABEL_INSTALLATION];
    return this.inner.updateNodeLabels(id, version, next);
  }

  createService(spec: DockerServiceSpec): Promise<string> {
    return this.inner.createService(this.stamp(spec));
  }

  async updateService(id: string, version: number, spec: DockerServiceSpec): Promise<void> {
    await this.guardService('updateService', id);
    return this.inner.updateService(id, version, this.stamp(spec));
  }

  async scaleService(id: string, version: number, replicas: number): Promise<void> {
    await this.guardService('scaleService', id);
    return this.inner.scaleService(id, version, replicas);
  }

  async removeService(id: string): Promise<void> {
    await this.guardService('removeService', id);
    return this.inner.removeService(id);
  }

  private stamp(spec: DockerServiceSpec): DockerServiceSpec {
    return { ...spec, Labels: { ...(spec.Labels ?? {}), [LABEL_INSTALLATION]: this.installation } };
  }

  private async guardService(operation: string, id: string): Promise<void> {
    // Answered from memory by the controller's cache, like every read of a reconcile.
    const s = await this.inner.inspectService(id);
    if (s) this.refuseForeign(operation, `service ${s.name}`, s.labels);
  }

  private refuseForeign(operation: string, what: string, labels: Record<string, string>): void {
    const owner = labels[LABEL_INSTALLATION];
    if (owner === undefined || owner === this.installation) return;
    throw new AdapterError(operation, `${what} belongs to installation ${owner}, not ${this.installation}: left alone`, { recoverable: false });
  }
}
