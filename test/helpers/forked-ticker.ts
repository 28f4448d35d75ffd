/** Forks the real compiled ticker child (dist/ticker/main.js, built by the global setup) as the
 * server does, and records what it says; anything that does not parse goes to `malformed`. */
import { fork } from 'node:child_process';
import { text } from 'node:stream/consumers';

import type { UpdatePayload } from '../../protocol/events';
import { parseChildMessage, type ChildMessage, type ParentMessage } from '../../protocol/ipc';
import { PATHS } from '../../server/paths';
import { Recorder, withDeadline } from './recorder';

export function forkTicker({ pipeStderr = false } = {}) {
  const child = fork(PATHS.tickerChild, [], {
    // Not the test runner's flags (loaders, inspector): the child runs as in production.
    execArgv: [],
    stdio: ['ignore', 'inherit', pipeStderr ? 'pipe' : 'inherit', 'ipc'],
    serialization: 'json',
  });
  const messages = new Recorder<ChildMessage>();
  const malformed: unknown[] = [];
  child.on('message', (raw) => {
    const parsed = parseChildMessage(raw);
    if (!parsed.ok) return void malformed.push(raw);
    messages.push(parsed.value);
    // Like an idle server: every update is reported delivered as soon as it arrives.
    if (parsed.value.type === 'update' && child.connected)
      child.send({ type: 'delivered', seq: parsed.value.update.seq } satisfies ParentMessage);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      messages.failAll(`the ticker child exited (code ${code}, signal ${signal})`);
      resolve({ code, signal });
    }),
  );
  const send = (message: ParentMessage) => child.send(message);
  /** The next `count` messages of `type`, those still to come. */
  const next = <T extends ChildMessage['type']>(type: T, count = 1) => {
    const isType = (item: ChildMessage): item is Extract<ChildMessage, { type: T }> =>
      item.type === type;
    const options = { from: messages.mark, timeoutMs: 3_000, what: `${count} ${type}` };
    return messages.waitForCount(count, isType, options);
  };
  return {
    process: child,
    malformed,
    exited,
    /** Everything the child wrote to stderr, once it closed ('' unless forked with pipeStderr). */
    stderr: child.stderr ? text(child.stderr) : Promise.resolve(''),
    send,
    next,
    /** Sends init and resolves with the state the child says it is ready with. */
    async init(state: UpdatePayload, tickMs: number) {
      send({ type: 'init', state, tickMs, unannounced: false });
      return (await next('ready'))[0]!.state;
    },
    /** Closes the IPC channel and resolves with how the child exited. */
    disconnect() {
      child.disconnect();
      return withDeadline(exited, 3_000, 'the child to exit after disconnect');
    },
  };
}
