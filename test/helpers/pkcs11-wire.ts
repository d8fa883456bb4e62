/**
 * A raw client of the module ↔ daemon socket, for tests that play a module that misbehaves or two
 * applications at once. What a real application does goes through libcpsd-pkcs11.so and OpenSC's,
 * NSS's, OpenSSL's and Java's tools instead.
 */
import { createConnection, type Socket } from 'node:net';
import { OP, PROTOCOL_VERSION } from '../../pkcs11/server.js';
import { Fields, FrameReader, TAG, field, frame, u32, type Field } from '../../pkcs11/wire.js';

export interface Answer {
  rv: number;
  fields: Fields;
  message: string | undefined;
}

export class WireClient {
  readonly socket: Socket;
  readonly #reader = new FrameReader();
  readonly #waiting: Array<(body: Buffer) => void> = [];
  #id = 0;
  closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const body of this.#reader.push(chunk)) this.#waiting.shift()?.(body);
    });
    this.closed = new Promise((r) => socket.once('close', () => r()));
  }

  static async connect(path: string, hello = true): Promise<WireClient> {
    const socket = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new WireClient(socket);
    if (hello) {
      const a = await client.call(OP.HELLO, [field(TAG.VERSION, u32(PROTOCOL_VERSION)), field(TAG.APP, { utf8: 'test' })]);
      if (a.rv !== 0) throw new Error(`HELLO refused: ${a.rv}`);
    }
    return client;
  }

  call(op: number, fields: Field[] = []): Promise<Answer> {
    const id = ++this.#id;
    this.socket.write(frame([field(TAG.OP, u32(op)), field(TAG.ID, u32(id)), ...fields]));
    return this.next();
  }

  next(): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.#waiting.push((body) => {
        const fields = Fields.of(body);
        resolve({ rv: fields.needU32(TAG.RV), fields, message: fields.utf8(TAG.MESSAGE) });
      });
      this.socket.once('close', () => reject(new Error('connection closed')));
    });
  }

  /** The first slot holding a token: its reader and generation. */
  async slot(): Promise<{ reader: string; generation: number }> {
    const a = await this.call(OP.SLOTS);
    for (const s of a.fields.all(TAG.SLOT)) {
      const f = Fields.of(s);
      if (f.bytes(TAG.PRESENT)?.[0] === 1) return { reader: f.needUtf8(TAG.READER), generation: f.needU32(TAG.GENERATION) };
    }
    throw new Error('no token');
  }

  target(s: { reader: string; generation: number }): Field[] {
    return [field(TAG.READER, { utf8: s.reader }), field(TAG.GENERATION, u32(s.generation))];
  }

  close(): void {
    this.socket.destroy();
  }
}
