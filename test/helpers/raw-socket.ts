/**
 * Socket.IO spoken by hand, for what no real client sends: a bare WebSocket that does the
 * Engine.IO and Socket.IO handshakes itself, and an Engine.IO long-polling session over fetch.
 */
import WebSocket from 'ws';

import { SOCKET_PATH } from '../../protocol/events';
import { Recorder, withDeadline } from './recorder';

/** Text frames as strings, binary frames as buffers. */
export type RawFrame = string | Buffer;

const DEADLINE_MS = 3_000;
const isText = (prefix: string) => (frame: RawFrame) =>
  typeof frame === 'string' && frame.startsWith(prefix);

const endpoint = (baseUrl: string, query: string): string => `${baseUrl}${SOCKET_PATH}/?${query}`;

export class RawSocket {
  readonly frames = new Recorder<RawFrame>();
  private readonly closed: Promise<{ code: number }>;
  private nextAckId = 1_000;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = isBinary ? data : data.toString('utf8');
      // Engine.IO v4: the server pings, the client must answer, or it is dropped.
      if (frame === '2') ws.send('3');
      this.frames.push(frame);
    });
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => resolve({ code })));
    // A refused upgrade or a reset ends in 'close' too; unheard, the error would throw.
    ws.on('error', () => undefined);
  }

  /** Opens the WebSocket transport and joins the default namespace, with `auth` if given. */
  static async connect(baseUrl: string, auth?: object): Promise<RawSocket> {
    const url = endpoint(baseUrl.replace(/^http/, 'ws'), 'EIO=4&transport=websocket');
    const socket = new RawSocket(new WebSocket(url));
    await socket.waitForText('0{', 'the Engine.IO open packet');
    socket.send(`40${auth ? JSON.stringify(auth) : ''}`);
    await socket.waitForText('40{', 'the Socket.IO connect packet');
    return socket;
  }

  waitForText(prefix: string, what: string, from = 0): Promise<RawFrame> {
    return this.frames.waitFor(isText(prefix), { from, timeoutMs: DEADLINE_MS, what });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** The Socket.IO events (`42[...]`) from `from` on: name and payload, without the recovery
   * offset that connection state recovery may append. */
  events(from = 0): unknown[][] {
    return this.frames
      .since(from)
      .filter(isText('42['))
      .map((frame) => (JSON.parse((frame as string).slice(2)) as unknown[]).slice(0, 2));
  }

  send(data: string): void {
    this.ws.send(data);
  }

  /** An unknown event with an ack id, and its answer: per-connection order makes it a barrier. */
  async roundTrip(): Promise<unknown> {
    const id = this.nextAckId++;
    const from = this.frames.mark;
    this.send(`42${id}["raw-barrier"]`);
    const answer = await this.waitForText(`43${id}[`, `the ack of raw barrier ${id}`, from);
    return (JSON.parse((answer as string).slice(`43${id}`.length)) as unknown[])[0];
  }

  waitClosed(): Promise<{ code: number }> {
    return withDeadline(this.closed, DEADLINE_MS, 'the server to close the raw connection');
  }

  close(): void {
    this.ws.terminate();
  }
}

export interface Polled {
  status: number;
  body: string;
}

/** An Engine.IO long-polling session, request by request. */
export class PollingSession {
  private constructor(
    private readonly baseUrl: string,
    readonly sid: string,
  ) {}

  /** The handshake and, if asked, the join; then it reads until a barrier's answer is in, so
   * that nothing is left queued and the next GET waits for news. */
  static async open(baseUrl: string, join: boolean): Promise<PollingSession> {
    const response = await fetch(endpoint(baseUrl, 'EIO=4&transport=polling'));
    const body = await response.text();
    if (!body.startsWith('0{')) throw new Error(`polling handshake failed: ${body}`);
    const session = new PollingSession(baseUrl, (JSON.parse(body.slice(1)) as { sid: string }).sid);
    if (join) {
      // Socket.IO drops a connection that sends to a namespace before it has joined.
      await session.readUntil('40', '40{');
      await session.readUntil('4299["polling-barrier"]', '4399[');
    }
    return session;
  }

  private async readUntil(payload: string, prefix: string): Promise<void> {
    await this.post(payload);
    for (;;) {
      const polled = await this.get();
      if (polled.status !== 200) throw new Error(`poll failed: ${polled.status} ${polled.body}`);
      if (polled.body.split('\x1e').some((packet) => packet.startsWith(prefix))) return;
    }
  }

  get url(): string {
    return endpoint(this.baseUrl, `EIO=4&transport=polling&sid=${this.sid}`);
  }

  get(): Promise<Polled> {
    return this.request({});
  }

  post(body: string): Promise<Polled> {
    return this.request({ method: 'POST', body });
  }

  private async request(init: RequestInit): Promise<Polled> {
    const response = await fetch(this.url, { ...init, signal: AbortSignal.timeout(DEADLINE_MS) });
    return { status: response.status, body: await response.text() };
  }
}
