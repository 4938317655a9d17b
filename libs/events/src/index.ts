export * from './cloud-event.js';
export * from './topic-catalogue.js';
export * from './event-log.js';
export * from './group-commit.js';
