import { specHash, type DockerServiceSpec } from '../../src/swarm/service-spec.js';

/** The berth.spec-hash an older berth wrote for `built`: the whole spec, replica count included. */
export function legacySpecHash(built: DockerServiceSpec): string {
  const { Labels: _labels, ...body } = built;
  return specHash(body);
}
