export * from './loader.js';
