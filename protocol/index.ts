export * from './events';
export * from './ipc';
export * from './stocks';
