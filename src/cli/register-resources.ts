import type { Command } from 'commander';
import { registerApply } from './apply.js';
import { registerDelete } from './delete.js';
import { registerDescribe } from './describe.js';
import { registerGc } from './gc.js';
import { registerGet } from './get.js';
import { registerScale } from './scale.js';

/** apply, get, describe, delete, scale, gc: the commands that work on resources in etcd. */
export function registerResourceCommands(program: Command): void {
  registerApply(program);
  registerGet(program);
  registerDescribe(program);
  registerDelete(program);
  registerScale(program);
  registerGc(program);
}
