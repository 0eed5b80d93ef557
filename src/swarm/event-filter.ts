import type { SwarmEvent } from './api.js';

/**
 * Container actions that can change what berth observes of a task: it started, stopped, or its
 * health changed (Docker emits `health_status: …` only when the status changes). A healthcheck
 * also emits exec_create / exec_start / exec_die on every probe, and attach, resize, top and the
 * like change nothing: reconciling for them would make Docker load grow with containers ×
 * healthcheck rate (the predicate of controller-runtime's `pkg/predicate`).
 */
const CONTAINER_ACTIONS = new Set(['create', 'start', 'die', 'kill', 'oom', 'stop', 'destroy', 'restart', 'pause', 'unpause']);

/** Whether a Docker event may change desired or observed state that berth acts on. */
export function isRelevantEvent(e: SwarmEvent): boolean {
  if (e.type !== 'container') return true;
  return CONTAINER_ACTIONS.has(e.action) || e.action.startsWith('health_status');
}
