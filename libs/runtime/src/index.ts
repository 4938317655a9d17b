export * from './config.js';
export * from './logger.js';
export * from './listen.js';
export * from './health.js';
export * from './metrics-server.js';
export * from './service-host.js';
export * from './process-host.js';
export * from './event-log-factory.js';
