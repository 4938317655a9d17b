export * from './eventually.js';
export * from './free-port.js';
export * from './postgres.js';
export * from './sshd.js';
export * from './kafka.js';
export * from './jdbc.js';
