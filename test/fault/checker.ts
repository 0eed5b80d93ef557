/**
 * The checker: reads the final state from the lab (Swarm, etcd, nginx) and says what violates
 * berth's guarantees for the last applied spec. It never repairs anything.
 *
 * - no duplicate: one Swarm service per name, one per (env, service, colour), and exactly the
 *   expected names (`<env>_api`, `<env>_web_blue|green`);
 * - no orphan: every service labelled `berth.env=E` has E in etcd;
 * - the route on exactly one healthy colour: the blue-green route's colour is a service whose
 *   tasks are all running (healthy: Swarm holds a task with a healthcheck in `starting` until it
 *   passes), its servers are exactly that colour's endpoints, the other colour runs nothing;
 * - status: observedGeneration == metadata.generation, phase Ready, activeColor == route colour;
 * - the Swarm equals the spec: image and replicas of `api` and of the live `web` colour;
 * - nginx answers the spec's version on both upstreams (10 answers in a row).
 */
import { LABEL_COLOR, LABEL_ENV, LABEL_SERVICE } from '../../src/swarm/labels.js';
import type { DockerService, FaultLab } from './fault-lab.js';
import type { Shape } from './spec.js';

export interface Observation {
  generation: number | undefined;
  observedGeneration: number | undefined;
  phase: string | undefined;
  routeColor: string | undefined;
  services: string[];
  violations: string[];
}

const replicasOf = (s: DockerService) => s.Spec.Mode.Replicated?.Replicas ?? 0;
const imageOf = (s: DockerService) => s.Spec.TaskTemplate.ContainerSpec.Image.replace(/@sha256:.*$/, '');

/** The cheap part: has the controller caught up with the last spec (status and nginx)? */
export async function converged(lab: FaultLab, shape: Shape): Promise<boolean> {
  const [env, st] = await Promise.all([lab.environment(), lab.status()]);
  if (!env || !st || st.observedGeneration !== env.metadata.generation || st.phase !== 'Ready') return false;
  for (const svc of ['api', 'web'] as const) {
    const a = await lab.get(lab.host(svc));
    if (a.status !== 200 || a.body !== shape[svc].version) return false;
  }
  return true;
}

export async function check(lab: FaultLab, shape: Shape): Promise<Observation> {
  const v: string[] = [];
  const [env, st, webRoute, all, addrs] = await Promise.all([lab.environment(), lab.status(), lab.route('web'), lab.services(), lab.nodeAddrs()]);
  const mine = all.filter((s) => s.Spec.Labels?.[LABEL_ENV] === lab.env || s.Spec.Name.startsWith(`${lab.env}_`));

  // No duplicate.
  const names = mine.map((s) => s.Spec.Name);
  const dupNames = names.filter((n, i) => names.indexOf(n) !== i);
  if (dupNames.length > 0) v.push(`duplicate service names: ${[...new Set(dupNames)].join(', ')}`);
  const identities = mine.map((s) => `${s.Spec.Labels?.[LABEL_ENV]}/${s.Spec.Labels?.[LABEL_SERVICE]}/${s.Spec.Labels?.[LABEL_COLOR] ?? '-'}`);
  const dupIds = identities.filter((n, i) => identities.indexOf(n) !== i);
  if (dupIds.length > 0) v.push(`two services for one (env, service, colour): ${[...new Set(dupIds)].join(', ')}`);
  const allowed = new Set([`${lab.env}_api`, `${lab.env}_web_blue`, `${lab.env}_web_green`]);
  const unexpected = names.filter((n) => !allowed.has(n));
  if (unexpected.length > 0) v.push(`unexpected services: ${unexpected.join(', ')}`);
  if (!names.includes(`${lab.env}_api`)) v.push(`${lab.env}_api missing`);

  // No orphan: every berth service's environment is in etcd.
  const envNames = new Set((await lab.store.list('Environment')).map((e) => e.metadata.name));
  for (const s of all) {
    const owner = s.Spec.Labels?.[LABEL_ENV];
    if (owner !== undefined && !envNames.has(owner)) v.push(`orphaned service ${s.Spec.Name} (berth.env=${owner}, no such environment in etcd)`);
  }

  // Status.
  const generation = env?.metadata.generation;
  if (!env) v.push('environment missing from etcd');
  if (!st) v.push('status missing');
  else {
    if (st.observedGeneration !== generation) v.push(`observedGeneration ${st.observedGeneration} != generation ${generation}`);
    if (st.phase !== 'Ready') v.push(`phase ${st.phase}: ${st.conditions.filter((c) => c.status !== 'True').map((c) => `${c.type} ${c.reason}: ${c.message}`).join('; ')}`);
  }

  // Rolling api: as the spec says.
  const api = mine.find((s) => s.Spec.Name === `${lab.env}_api`);
  if (api) {
    if (imageOf(api) !== lab.image(shape.api.version)) v.push(`${api.Spec.Name} runs ${imageOf(api)}, spec says ${lab.image(shape.api.version)}`);
    if (replicasOf(api) !== shape.api.replicas) v.push(`${api.Spec.Name} has ${replicasOf(api)} replicas, spec says ${shape.api.replicas}`);
  }

  // Blue-green web: the route on exactly one healthy colour.
  const color = webRoute?.color;
  if (!webRoute || !color) v.push(`route ${lab.host('web')} missing or without colour`);
  else {
    if (st?.services.web?.activeColor !== color) v.push(`status activeColor ${st?.services.web?.activeColor} != route colour ${color}`);
    const live = mine.find((s) => s.Spec.Name === `${lab.env}_web_${color}`);
    const idle = mine.find((s) => s.Spec.Name === `${lab.env}_web_${color === 'blue' ? 'green' : 'blue'}`);
    if (!live) v.push(`route on ${color}, but ${lab.env}_web_${color} does not exist`);
    else {
      if (imageOf(live) !== lab.image(shape.web.version)) v.push(`live colour ${live.Spec.Name} runs ${imageOf(live)}, spec says ${lab.image(shape.web.version)}`);
      if (replicasOf(live) !== shape.web.replicas) v.push(`live colour ${live.Spec.Name} has ${replicasOf(live)} replicas, spec says ${shape.web.replicas}`);
      const tasks = (await lab.tasks(live.ID)).filter((t) => t.DesiredState === 'running');
      const notRunning = tasks.filter((t) => t.Status.State !== 'running');
      if (notRunning.length > 0 || tasks.length !== replicasOf(live)) {
        v.push(`live colour ${live.Spec.Name}: ${tasks.length - notRunning.length} of ${replicasOf(live)} tasks running and healthy (${notRunning.map((t) => t.Status.State).join(', ')})`);
      }
      // A task's port status may list the same published port more than once.
      const endpoints = [
        ...new Set(
          tasks
            .filter((t) => t.Status.State === 'running')
            .flatMap((t) => (t.Status.PortStatus?.Ports ?? []).filter((p) => p.TargetPort === 8080).map((p) => `${addrs.get(t.NodeID)}:${p.PublishedPort}`)),
        ),
      ].sort();
      const servers = [...webRoute.servers].sort();
      if (JSON.stringify(servers) !== JSON.stringify(endpoints)) v.push(`route servers ${JSON.stringify(servers)} are not ${color}'s endpoints ${JSON.stringify(endpoints)}`);
    }
    if (idle) {
      const running = (await lab.tasks(idle.ID)).filter((t) => t.DesiredState === 'running' && t.Status.State === 'running');
      if (replicasOf(idle) !== 0 || running.length > 0) v.push(`idle colour ${idle.Spec.Name} still has ${replicasOf(idle)} replicas, ${running.length} running`);
    }
  }

  // nginx serves the last spec's version.
  for (const svc of ['api', 'web'] as const) {
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await lab.get(lab.host(svc)));
    const wrong = answers.filter((a) => a.status !== 200 || a.body !== shape[svc].version);
    if (wrong.length > 0) v.push(`nginx ${lab.host(svc)}: ${wrong.length}/10 answers not ${shape[svc].version} (${[...new Set(wrong.map((a) => `${a.status} ${a.body || a.error}`))].join(', ')})`);
  }

  return { generation, observedGeneration: st?.observedGeneration, phase: st?.phase, routeColor: color, services: names.sort(), violations: v };
}
