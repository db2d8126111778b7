const encoder = new TextEncoder();

/**
 * Builds a MySQL protocol ERR packet (sequence 0) that a server may send instead of its
 * handshake, as MariaDB does for "Host is blocked". Clients then report the message instead of
 * a bare "Lost connection", which tells the operator that galerad refused on purpose.
 */
export function mysqlErrorPacket(code: number, sqlState: string, message: string): Uint8Array {
  const text = encoder.encode(message.slice(0, 512));
  const state = encoder.encode(sqlState.padEnd(5, "0").slice(0, 5));
  const payloadLength = 1 + 2 + 1 + 5 + text.length;
  const packet = new Uint8Array(4 + payloadLength);
  packet[0] = payloadLength & 0xff;
  packet[1] = (payloadLength >> 8) & 0xff;
  packet[2] = (payloadLength >> 16) & 0xff;
  packet[3] = 0; // sequence id
  packet[4] = 0xff;
  packet[5] = code & 0xff;
  packet[6] = (code >> 8) & 0xff;
  packet[7] = 0x23; // '#', SQLSTATE marker
  packet.set(state, 8);
  packet.set(text, 13);
  return packet;
}

/** ER_UNKNOWN_ERROR: the generic server error code, used with a message saying why. */
export const ER_UNKNOWN_ERROR = 1105;
/** ER_SERVER_SHUTDOWN: used while the proxy drains. */
export const ER_SERVER_SHUTDOWN = 1053;
