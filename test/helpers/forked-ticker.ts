/**
 * Forks the real compiled ticker child (dist/ticker/main.js, built by the global setup) and
 * records what it says. Every message from the child is checked against the contract on
 * arrival; anything that does not parse is kept in `malformed` for the test to assert on.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { text } from 'node:stream/consumers';

import type { UpdatePayload } from '../../protocol/events';
import {
  parseChildMessage,
  type ChildMessage,
  type OpReply,
  type ParentMessage,
  type ParentOpWithoutId,
} from '../../protocol/ipc';
import { Recorder, withDeadline } from './recorder';

export const ROOT = path.resolve(__dirname, '..', '..');

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<ForkedTicker>();

export class ForkedTicker {
  /** Each message with performance.now() on its arrival. */
  readonly messages = new Recorder<{ message: ChildMessage; at: number }>();
  readonly malformed: unknown[] = [];
  readonly exited: Promise<Exit>;
  /** Everything the child wrote to stderr, once it closed ('' unless forked with pipeStderr). */
  readonly stderr: Promise<string>;
  private nextId = 1;

  private constructor(readonly process: ChildProcess) {
    this.stderr = process.stderr ? text(process.stderr) : Promise.resolve('');
    process.on('message', (raw) => {
      const parsed = parseChildMessage(raw);
      if (!parsed.ok) return void this.malformed.push(raw);
      const message = parsed.value;
      this.messages.push({ message, at: performance.now() });
      // Like an idle server: every update is reported delivered as soon as it arrives.
      if (message.type === 'update' && process.connected)
        process.send({ type: 'delivered', seq: message.update.seq } satisfies ParentMessage);
    });
    this.exited = new Promise<Exit>((resolve) => {
      process.once('exit', (code, signal) => {
        live.delete(this);
        this.messages.failAll(`the ticker child exited (code ${code}, signal ${signal})`);
        resolve({ code, signal });
      });
    });
  }

  static fork({ pipeStderr = false } = {}): ForkedTicker {
    const child = fork(path.join(ROOT, 'dist', 'ticker', 'main.js'), [], {
      // Not the test runner's flags (loaders, inspector): the child runs as in production.
      execArgv: [],
      stdio: ['ignore', 'inherit', pipeStderr ? 'pipe' : 'inherit', 'ipc'],
      serialization: 'json',
    });
    const ticker = new ForkedTicker(child);
    live.add(ticker);
    return ticker;
  }

  /** Kills every child still running (call from afterEach). */
  static async killAll(): Promise<void> {
    for (const ticker of live) ticker.process.kill('SIGKILL');
    await Promise.all([...live].map((ticker) => ticker.exited));
  }

  /** Sends anything, well-formed or not. */
  sendRaw(message: unknown): void {
    this.process.send(message as object);
  }

  async init(state: UpdatePayload, tickMs: number): Promise<UpdatePayload> {
    const from = this.messages.mark;
    this.sendRaw({ type: 'init', state, tickMs, unannounced: false } satisfies ParentMessage);
    const { message } = await this.messages.waitFor((item) => item.message.type === 'ready', {
      from,
      timeoutMs: 5_000,
      what: 'ready',
    });
    if (message.type !== 'ready') throw new Error('unreachable');
    return message.state;
  }

  /** Sends an op with a fresh id and resolves with its reply, when and at which index it came. */
  async op(op: ParentOpWithoutId, timeoutMs = 2_000) {
    const id = this.nextId++;
    const from = this.messages.mark;
    this.sendRaw({ ...op, id });
    const received = await this.messages.waitFor(
      (item) => item.message.type === 'reply' && item.message.id === id,
      { from, timeoutMs, what: `the reply to ${JSON.stringify({ ...op, id })}` },
    );
    if (received.message.type !== 'reply') throw new Error('unreachable');
    const reply: OpReply = received.message.reply;
    return { reply, at: received.at, index: this.messages.items.indexOf(received) };
  }

  /** Waits for `count` updates at or after index `from`. */
  async waitForUpdates(count: number, from: number, timeoutMs: number) {
    const isUpdate = (item: { message: ChildMessage }) => item.message.type === 'update';
    const found = await this.messages.waitForCount(count, isUpdate, {
      from,
      timeoutMs,
      what: `${count} updates`,
    });
    return found.flatMap(({ message, at }) =>
      message.type === 'update' ? [{ update: message.update, at }] : [],
    );
  }

  /** Closes the IPC channel and resolves with how the child exited. */
  disconnect(timeoutMs = 3_000): Promise<Exit> {
    this.process.disconnect();
    return withDeadline(this.exited, timeoutMs, 'the child to exit after disconnect');
  }
}
