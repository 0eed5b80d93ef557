import type Dockerode from 'dockerode';

/**
 * Takes berth's claim labels (`berth.env`, `berth.installation`) off every node claimed by an
 * environment `owned` accepts: a lab test's clean slate, by hand, with no controller running.
 */
export async function releaseClaims(docker: Dockerode, owned: (env: string) => boolean): Promise<void> {
  for (const n of await docker.listNodes()) {
    const labels = { ...(n.Spec?.Labels ?? {}) } as Record<string, string>;
    const env = labels['berth.env'];
    if (env === undefined || !owned(env)) continue;
    delete labels['berth.env'];
    delete labels['berth.installation'];
    await docker.getNode(n.ID).update({ _query: { version: n.Version!.Index }, _body: { ...n.Spec, Labels: labels } } as never);
  }
}
