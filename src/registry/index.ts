export * from './client.js';
export * from './credentials.js';
export * from './errors.js';
export * from './reference.js';
