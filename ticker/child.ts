/** Wires a TickerModel to the IPC channel; apart from main.ts so tests can drive it. */
import type { UpdatePayload } from '../protocol/events';
import { parseParentMessage, type ChildMessage } from '../protocol/ipc';

import { TickerModel, type Timers } from './model';

/** Returns the function that takes each raw message from the parent; it never throws. */
export function createTickerChild(send: (message: ChildMessage) => void, timers: Timers) {
  let model: TickerModel | null = null;

  return (raw: unknown) => {
    const parsed = parseParentMessage(raw);
    if (!parsed.ok) return send({ type: 'rejected', error: parsed.error });
    const message = parsed.value;
    switch (message.type) {
      case 'init': {
        // A second init replaces the model: the parent is authoritative about the state.
        model?.dispose();
        const onUpdate = (update: UpdatePayload) => send({ type: 'update', update });
        model = new TickerModel({ ...message, timers, onUpdate });
        return send({ type: 'ready', state: model.snapshot() });
      }
      // Answered with or without a model: it only asks whether this process is alive.
      case 'ping':
        return send({ type: 'pong', id: message.id });
      case 'delivered':
        return model?.delivered(message.seq);
      case 'start':
      case 'stop':
      case 'buy': {
        const reply = !model
          ? { ok: false as const, error: 'ticker is not initialised yet' }
          : message.type === 'buy'
            ? model.buy(message.name)
            : model[message.type]();
        return send({ type: 'reply', id: message.id, reply });
      }
      default:
        throw new Error(`unhandled parent message ${JSON.stringify(message satisfies never)}`);
    }
  };
}
