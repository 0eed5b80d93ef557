export * from './client.js';
export * from './keys.js';
export * from './resources.js';
export * from './status.js';
export * from './watch.js';
