export * from './cloud-event.js';
export * from './topic-catalogue.js';
export * from './event-log.js';
export * from './group-commit.js';
export * from './idempotent-handler.js';
export * from './postgres/postgres-event-log.js';
export * from './postgres/postgres-processed-events.js';
export * from './kafka/kafka-event-log.js';
