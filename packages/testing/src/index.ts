export * from './processes.js';
export * from './in-process.js';
export * from './wait.js';
export * from './route-cases.js';
export * from './signed.js';
export * from './nats.js';
export * from './endless-body.js';
export * from './deployment.js';
