/** Wires a TickerModel to the IPC channel; apart from main.ts so tests can drive it. */
import { parseParentMessage, type ChildMessage, type ParentMessage } from '../protocol/ipc';

import { TickerModel, type Timers } from './model';

export interface TickerChild {
  /** Feed one raw message from the parent; never throws. */
  receive(raw: unknown): void;
  dispose(): void;
}

export function createTickerChild(
  send: (message: ChildMessage) => void,
  timers: Timers,
): TickerChild {
  let model: TickerModel | null = null;

  function handle(message: ParentMessage): void {
    if (message.type === 'init') {
      // A second init replaces the model: the parent is authoritative about the state.
      model?.dispose();
      model = new TickerModel({
        state: message.state,
        tickMs: message.tickMs,
        unannounced: message.unannounced,
        timers,
        onUpdate: (update) => send({ type: 'update', update }),
      });
      send({ type: 'ready', state: model.snapshot() });
      return;
    }
    // Answered with or without a model: it only asks whether this process is alive.
    if (message.type === 'ping') {
      send({ type: 'pong', id: message.id });
      return;
    }
    if (!model) {
      // A notice needs no answer; an op does.
      if (message.type === 'delivered') return;
      send({
        type: 'reply',
        id: message.id,
        reply: { ok: false, error: 'ticker is not initialised yet' },
      });
      return;
    }
    switch (message.type) {
      case 'delivered':
        model.delivered(message.seq);
        return;
      case 'start':
      case 'stop': {
        const result = message.type === 'start' ? model.start() : model.stop();
        send({ type: 'reply', id: message.id, reply: { ok: true, ...result } });
        return;
      }
      case 'buy': {
        const bought = model.buy(message.name);
        send({
          type: 'reply',
          id: message.id,
          reply: bought.ok
            ? { ok: true, running: model.snapshot().running, stock: bought.stock }
            : bought,
        });
        return;
      }
      default: {
        const unreachable: never = message;
        throw new Error(`unhandled parent message ${JSON.stringify(unreachable)}`);
      }
    }
  }

  return {
    receive(raw) {
      const parsed = parseParentMessage(raw);
      if (!parsed.ok) {
        send({ type: 'rejected', error: parsed.error });
        return;
      }
      handle(parsed.value);
    },
    dispose() {
      model?.dispose();
      model = null;
    },
  };
}
