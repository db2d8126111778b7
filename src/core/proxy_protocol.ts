/** The 12-byte signature every PROXY protocol v2 header starts with. */
const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** The two ends of a client's connection, as the proxy saw them. */
export interface ProxiedAddresses {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

function ipv4Bytes(address: string): number[] | null {
  const plain = address.startsWith("::ffff:") ? address.slice(7) : address;
  const parts = plain.split(".");
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : 256));
  return bytes.every((b) => b <= 255) ? bytes : null;
}

function ipv6Bytes(address: string): number[] | null {
  if (!address.includes(":")) return null;
  let head = address;
  let tail4: number[] = [];
  const lastColon = address.lastIndexOf(":");
  if (address.slice(lastColon + 1).includes(".")) {
    const v4 = ipv4Bytes(address.slice(lastColon + 1));
    if (!v4) return null;
    tail4 = v4;
    head = address.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const parse = (
    s: string,
  ) => (s === ""
    ? []
    : s.split(":").map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : -1)));
  const left = parse(halves[0]);
  const right = halves.length === 2 ? parse(halves[1]) : [];
  if ([...left, ...right].some((g) => g < 0)) return null;
  const fill = halves.length === 2 ? 8 - left.length - right.length : 0;
  if (fill < 0 || (halves.length === 1 && left.length !== 8)) return null;
  const groups = [...left, ...new Array(fill).fill(0), ...right];
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail4.length) bytes.splice(12, 4, ...tail4);
  return bytes;
}

/**
 * Builds a PROXY protocol v2 header (binary, command PROXY, TCP) that tells the backend who the
 * client is. IPv4-mapped IPv6 addresses are sent as IPv4. Addresses it cannot read give a LOCAL
 * header, which the server treats as a connection without proxy information.
 */
export function proxyV2Header(addresses: ProxiedAddresses): Uint8Array {
  const src4 = ipv4Bytes(addresses.sourceAddress);
  const dst4 = ipv4Bytes(addresses.destinationAddress);
  let family: number;
  let body: number[];
  if (src4 && dst4) {
    family = 0x11; // TCP over IPv4
    body = [...src4, ...dst4];
  } else {
    const src6 = ipv6Bytes(addresses.sourceAddress) ??
      (src4 ? ipv6Bytes(`::ffff:${addresses.sourceAddress}`) : null);
    const dst6 = ipv6Bytes(addresses.destinationAddress) ??
      (dst4 ? ipv6Bytes(`::ffff:${addresses.destinationAddress}`) : null);
    if (!src6 || !dst6) return new Uint8Array([...SIGNATURE, 0x20, 0x00, 0x00, 0x00]); // LOCAL
    family = 0x21; // TCP over IPv6
    body = [...src6, ...dst6];
  }
  body.push(
    addresses.sourcePort >> 8,
    addresses.sourcePort & 0xff,
    addresses.destinationPort >> 8,
    addresses.destinationPort & 0xff,
  );
  return new Uint8Array([
    ...SIGNATURE,
    0x21,
    family,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}
