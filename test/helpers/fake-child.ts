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
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  /** Whether disconnect() makes the child exit, as a real one does; kill() always does. */
  exitOnDisconnect = true;

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
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = code;
    this.signalCode = signal;
    this.connected = false;
    this.emit('exit', code, signal);
  }

  /** The last message of a type the parent sent. */
  lastSent<T extends ParentMessage['type']>(type: T): Extract<ParentMessage, { type: T }> {
    const found = this.sent
      .filter((message): message is Extract<ParentMessage, { type: T }> => message.type === type)
      .at(-1);
    if (!found) throw new Error(`the parent sent no ${type}; sent ${JSON.stringify(this.sent)}`);
    return found;
  }
}

/** A fork function that hands out FakeChild instances and remembers every call. */
export function fakeFork() {
  const calls: {
    modulePath: string;
    args: readonly string[];
    options: ForkOptions;
    child: FakeChild;
  }[] = [];
  const fork = (
    modulePath: string,
    args: readonly string[],
    options: ForkOptions,
  ): ChildProcess => {
    const child = new FakeChild();
    calls.push({ modulePath, args, options, child });
    return child as unknown as ChildProcess;
  };
  const latest = (): FakeChild => {
    const call = calls.at(-1);
    if (!call) throw new Error('nothing was forked');
    return call.child;
  };
  return { calls, fork, latest };
}
