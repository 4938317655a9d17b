export * from './loader.js';
export * from './quiesce.js';
