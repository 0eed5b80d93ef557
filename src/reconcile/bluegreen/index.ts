export * from './decide.js';
export * from './execute.js';
export * from './history.js';
export * from './probe.js';
