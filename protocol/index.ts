export * from './events';
export * from './ipc';
export * from './stocks';
export * from './cluster';
