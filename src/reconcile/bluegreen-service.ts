import type { ServiceSpec } from '../api/environment.js';
import type { Color } from '../api/status.js';
import { LABEL_COLOR, LABEL_SERVICE, swarmServiceName } from '../swarm/labels.js';
import type { ObservedService, SwarmSnapshot } from '../swarm/model.js';
import type { Action } from './planner/actions.js';
import { planService } from './planner/services.js';

export interface BlueGreenInput {
  env: string;
  service: string;
  spec: ServiceSpec;
  /** Every Swarm service the environment owns for this berth service, of any colour. */
  owned: ObservedService[];
  snapshot: SwarmSnapshot;
  now: Date;
}

export interface BlueGreenDecision {
  actions: Action[];
  /** The colour the route points at. */
  activeColor: Color;
  /** The Swarm service whose running endpoints the route holds. */
  routedServiceName: string;
}

/**
 * THE BLUE-GREEN SEAM. The environment reconciler calls this for every service with
 * `strategy.type: blueGreen` and applies the actions it returns; it publishes the route to
 * `routedServiceName`'s endpoints with `activeColor`.
 *
 * TODO(routing): replace the body with a call into the routing engineer's decision module
 * (src/reconcile/bluegreen*.ts): bring up the idle colour, wait healthy, cut the route over in
 * one transaction, drain and remove the old colour, honour autoPromote/progressDeadline, observe
 * berth_cutovers_total / berth_cutover_duration_seconds.
 *
 * For now a blue-green service behaves like a rolling one that is always `blue`
 * (`<env>_<service>_blue`), and any other colour is removed.
 */
export async function reconcileBlueGreenService(input: BlueGreenInput): Promise<BlueGreenDecision> {
  const { env, service, spec, owned } = input;
  const name = swarmServiceName(env, service, 'blue');
  const blue = owned.filter((s) => s.labels[LABEL_SERVICE] === service && (s.labels[LABEL_COLOR] === 'blue' || s.name === name));
  const others = owned.filter((s) => !blue.includes(s));
  const actions: Action[] = planService(env, service, spec, blue, 'blue');
  if (blue.length > 0) {
    for (const s of others) actions.push({ kind: 'removeService', env, service, name: s.name, id: s.id, reason: 'not the active colour' });
  }
  return { actions, activeColor: 'blue', routedServiceName: name };
}
