/** The wire contract that server and clients both import, so a rename fails to compile on both.
 * Types and constants only (the payloads are schema types), so the browser bundle stays small. */
import type { z } from 'zod';

import type { StockName } from './stocks';
import type * as schemas from './validation';

export type Stock = z.infer<typeof schemas.stockSchema>;
export type StatusPayload = z.infer<typeof schemas.statusSchema>;
export type UpdatePayload = z.infer<typeof schemas.updateSchema>;
export type OpeningPayload = z.infer<typeof schemas.openingSchema>;
export type AckError = z.infer<typeof schemas.ackErrorSchema>;
export type RunAck = z.infer<typeof schemas.runAckSchema>;
export type BuyAck = z.infer<typeof schemas.buyAckSchema>;
export type HistoryPayload = z.infer<typeof schemas.historySchema>;

export interface ServerToClientEvents {
  status: (status: StatusPayload) => void;
  update: (update: UpdatePayload) => void;
  /** To each new socket only, right after its snapshot `update`. */
  history: (history: HistoryPayload) => void;
  /** What "change since open" counts from: to each new socket, and to everyone on a start. */
  opening: (opening: OpeningPayload) => void;
}

/** Events a client may emit. On the wire the ack is optional (a refusal then goes back as a
 * `status`); it is required here because socket.io-client only types a required last callback. */
export interface ClientToServerEvents {
  start: (ack: (result: RunAck) => void) => void;
  stop: (ack: (result: RunAck) => void) => void;
  buy: (name: StockName, ack: (result: BuyAck) => void) => void;
}

/** Status messages, kept word for word from the original demo where it had them. */
export const STATUS = {
  connected: 'EHLO OK Connected',
  started: 'Processing',
  stopped: 'Stopped',
  tickerLost: 'Ticker restarting: prices paused',
  tickerBack: 'Ticker back: prices live',
  shuttingDown: 'Server shutting down',
} as const;

/** Socket.IO's default path; stated here so that other clients know what to dial. */
export const SOCKET_PATH = '/socket.io';
