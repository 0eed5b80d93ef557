export * from './duration.js';
export * from './environment.js';
export * from './errors.js';
export * from './group.js';
export * from './metadata.js';
export * from './resource.js';
export * from './status.js';
