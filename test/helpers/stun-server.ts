/**
 * A STUN server for tests (RFC 5389 §7.3: Binding requests answered with the
 * XOR-MAPPED-ADDRESS they came from), on a free UDP port of `host`. Enough for
 * browsers and werift to gather server-reflexive candidates offline; it counts
 * the requests it answered so a test can show STUN was really used.
 */
import dgram from 'node:dgram';
import { Message, classes, methods, parseMessage } from 'werift';

export interface StunServer {
  url: string;
  readonly answered: number;
  close(): Promise<void>;
}

export function startStunServer(host: string): Promise<StunServer> {
  const sock = dgram.createSocket('udp4');
  let answered = 0;
  sock.on('message', (data, from) => {
    const req = parseMessage(data);
    if (!req || req.messageMethod !== methods.BINDING || req.messageClass !== classes.REQUEST) return;
    answered++;
    const res = new Message(methods.BINDING, classes.RESPONSE, req.transactionId).setAttribute('XOR-MAPPED-ADDRESS', [from.address, from.port]).addFingerprint();
    sock.send(res.bytes, from.port, from.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, host, () =>
      resolve({
        url: `stun:${host}:${sock.address().port}`,
        get answered() {
          return answered;
        },
        close: () => new Promise<void>((done) => sock.close(() => done())),
      }),
    );
  });
}
