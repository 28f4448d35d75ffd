/**
 * A stand-in for a forked ChildProcess, for driving the ticker supervisor without processes:
 * it records what the parent sends and lets the test speak and exit for the child.
 */
import type { ChildProcess, ForkOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';

import type { ParentMessage } from '../../protocol/ipc';

let nextPid = 50_000;

export class FakeChild extends EventEmitter {
  readonly pid = nextPid++;
  readonly sent: ParentMessage[] = [];
  readonly signals: NodeJS.Signals[] = [];
  connected = true;
  private exited = false;
  /** Whether disconnect() makes the child exit, as a real one does; kill() always does. */
  exitOnDisconnect = true;

  constructor(
    readonly modulePath: string,
    readonly options: ForkOptions,
  ) {
    super();
  }

  send(message: ParentMessage, callback?: (error: Error | null) => void): boolean {
    this.sent.push(structuredClone(message));
    callback?.(null);
    return true;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.signals.push(signal);
    this.exit(null, signal);
    return true;
  }

  disconnect(): void {
    this.connected = false;
    if (this.exitOnDisconnect) this.exit(0, null);
  }

  /** The child says something (anything: the supervisor must validate it). */
  say(message: unknown): void {
    this.emit('message', structuredClone(message));
  }

  exit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    this.connected = false;
    this.emit('exit', code, signal);
  }

  /** The last message of a type the parent sent. */
  lastSent<T extends ParentMessage['type']>(type: T): Extract<ParentMessage, { type: T }> {
    const found = this.sent.findLast((message) => message.type === type);
    if (!found) throw new Error(`the parent sent no ${type}; sent ${JSON.stringify(this.sent)}`);
    return found as Extract<ParentMessage, { type: T }>;
  }
}

/** A fork function that hands out FakeChild instances and remembers each. */
export function fakeFork() {
  const children: FakeChild[] = [];
  const fork = (modulePath: string, args: readonly string[], options: ForkOptions) => {
    if (args.length > 0) throw new Error(`the child takes no arguments: ${args.join(' ')}`);
    children.push(new FakeChild(modulePath, options));
    return children.at(-1) as unknown as ChildProcess;
  };
  const latest = (): FakeChild => {
    const child = children.at(-1);
    if (!child) throw new Error('nothing was forked');
    return child;
  };
  return { children, fork, latest };
}
