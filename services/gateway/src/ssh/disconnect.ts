import { createRequire } from 'node:module';
import type { Connection } from 'ssh2';

const require = createRequire(import.meta.url);

/** SSH_MSG_DISCONNECT reason codes (RFC 4253 §11.1) the gateway uses. */
export const DisconnectReason = {
  HOST_NOT_ALLOWED_TO_CONNECT: 1,
  PROTOCOL_ERROR: 2,
  SERVICE_NOT_AVAILABLE: 7,
  HOST_KEY_NOT_VERIFIABLE: 9,
  BY_APPLICATION: 11,
  TOO_MANY_CONNECTIONS: 12,
  NO_MORE_AUTH_METHODS_AVAILABLE: 14,
  ILLEGAL_USER_NAME: 15,
} as const;
export type DisconnectReason = (typeof DisconnectReason)[keyof typeof DisconnectReason];

const MESSAGE_DISCONNECT = 1;

interface PacketWriter {
  readonly allocStartKEX: number;
  alloc(length: number, force?: boolean): Buffer;
  finalize(packet: Buffer, force?: boolean): Buffer;
}
interface ProtocolInternals {
  readonly _packetRW: { readonly write: PacketWriter };
}
interface ConnectionInternals {
  readonly _protocol?: ProtocolInternals;
  readonly _sock?: { end(): void; destroy(): void };
}

/**
 * Ends a client's connection with SSH_MSG_DISCONNECT carrying a reason code and a sentence, which
 * OpenSSH prints as "Received disconnect from …: <sentence>". ssh2's own `end()` sends the code
 * with an empty description, so a person would learn nothing; this writes the same packet with
 * the description filled in. It uses ssh2's packet writer (the version is pinned in package.json,
 * and the SSH int tests read the sentence off a real `ssh`, so a change there fails loudly).
 */
export function disconnect(connection: Connection, reason: DisconnectReason, description: string): void {
  const internals = connection as unknown as ConnectionInternals;
  const proto = internals._protocol;
  const { sendPacket } = require('ssh2/lib/protocol/utils.js') as { sendPacket(proto: unknown, packet: Buffer, bypass?: boolean): void };
  if (!proto?._packetRW) {
    connection.end();
    return;
  }
  // One line, bounded: the description is shown verbatim in the client's terminal.
  const text = Buffer.from(description.replace(/[\r\n]+/g, ' ').slice(0, 1000), 'utf8');
  const length = 1 + 4 + 4 + text.length + 4;
  const writer = proto._packetRW.write;
  let p = writer.allocStartKEX;
  const packet = writer.alloc(length, true);
  packet[p] = MESSAGE_DISCONNECT;
  packet.writeUInt32BE(reason, ++p);
  packet.writeUInt32BE(text.length, (p += 4));
  text.copy(packet, (p += 4));
  packet.writeUInt32BE(0, p + text.length); // empty language tag
  try {
    sendPacket(proto, writer.finalize(packet, true), true);
  } finally {
    // As ssh2's own end() does after its DISCONNECT (which would send a second one): close the socket.
    internals._sock?.end();
  }
}
