/** Socket.IO spoken by hand over a bare WebSocket, to see every frame a connection gets (the
 * `history` greeting, recovery offsets) that socket.io-client would hide. */
import WebSocket from 'ws';

import { SOCKET_PATH } from '../../protocol/events';
import { Recorder } from './recorder';

export class RawSocket {
  /** Text frames: forkcast sends no binary. */
  readonly frames = new Recorder<string>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const frame = data.toString('utf8');
      // Engine.IO v4: the server pings, the client must answer, or it is dropped.
      if (frame === '2') ws.send('3');
      this.frames.push(frame);
    });
    // A refused upgrade or a reset ends in 'close' too; unheard, the error would throw.
    ws.on('error', () => undefined);
  }

  /** Opens the WebSocket transport and joins the default namespace, with `auth` if given. */
  static async connect(baseUrl: string, auth?: object): Promise<RawSocket> {
    const url = `${baseUrl.replace(/^http/, 'ws')}${SOCKET_PATH}/?EIO=4&transport=websocket`;
    const socket = new RawSocket(new WebSocket(url));
    await socket.waitForText('0{', 'the Engine.IO open packet');
    socket.send(`40${auth ? JSON.stringify(auth) : ''}`);
    await socket.waitForText('40{', 'the Socket.IO connect packet');
    return socket;
  }

  waitForText(prefix: string, what: string): Promise<string> {
    return this.frames.waitFor((frame) => frame.startsWith(prefix), { timeoutMs: 3_000, what });
  }

  send(data: string): void {
    this.ws.send(data);
  }

  close(): void {
    this.ws.terminate();
  }
}
