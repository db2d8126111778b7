/**
 * Compact news between proxies: news that has not changed since the party last held it goes as
 * "same" (a hash) instead of the whole state, so a settled tier's news is mostly small
 * datagrams (docs/BENCHMARKS.md has the figures). The agreement core never sees the difference:
 * a "same" is delivered as the very message it names (held by the receiver, byte for byte what
 * the sender sent), and one the receiver cannot match is dropped, which the core already takes
 * as a lost datagram.
 *
 * - Who reads it. A party reads "same" once it sent us one, or a `heard` field (only a party
 *   that reads "same" sends either). A proxy offers a "same" to a proxy that sends it news at
 *   most every `PROBE_MS` until it learns; a release without compact news drops the offer as
 *   bad_type. Agents never send news, so they are never offered one.
 * - What the party holds. To a party that reads it, every datagram ("same" too) says in `heard`
 *   the hash of the news we hold from it. The sender sends "same" only when the party's last `heard` names
 *   exactly the news it is about to send: a lost or changed news goes whole until acknowledged.
 * - A restart. A new incarnation of the party forgets what it held and what it reads.
 *
 * Pure: the transport (transport.ts) keeps one `NewsLink` per party and does the I/O.
 */
import { createHash } from "node:crypto";
import type { PeerMessage, SameNews } from "./codec.ts";

/** How often a party not known to read "same" is offered one. */
export const PROBE_MS = 30_000;

export interface NewsLink {
  /** The party reads "same" (and `heard`). */
  reads: boolean;
  /** The party's incarnation these facts are about. */
  incarnation: string | null;
  /** The hash of our news the party last said it holds ("" for none). */
  holds: string;
  /** The last news we received from the party whole: its body as sent, and its hash. */
  got: { hash: string; json: string } | null;
  /** When it was last offered a "same" (`-Infinity`: never). */
  probedAt: number;
}

export const NEW_LINK: NewsLink = {
  reads: false,
  incarnation: null,
  holds: "",
  got: null,
  probedAt: -Infinity,
};

/** The body a hash covers: the message without its kind and `heard`, as JSON. */
export function newsBody(message: PeerMessage): { json: string; hash: string } {
  const { kind: _, heard: __, ...body } = message;
  const json = JSON.stringify(body);
  return { json, hash: createHash("sha256").update(json).digest("hex").slice(0, 32) };
}

/** What to send for `message`: whole (with `heard` for a party that reads it), or "same". */
export type Outgoing =
  | { link: NewsLink; send: "whole"; message: PeerMessage; probe: SameNews | null }
  | { link: NewsLink; send: "same"; same: SameNews };

export function outgoing(link: NewsLink, message: PeerMessage, now: number): Outgoing {
  const heard = link.got?.hash ?? "";
  const whole = link.reads ? { ...message, heard } : message;
  if (message.kind !== "state") return { link, send: "whole", message: whole, probe: null };
  // A party that sends us news is a proxy: it may read "same" without our knowing yet.
  const offer = !link.reads && link.got !== null && now - link.probedAt >= PROBE_MS;
  // Hashed only where a "same" may go: not for every news to a party that does not read it.
  if (!link.reads && !offer) return { link, send: "whole", message: whole, probe: null };
  const { hash } = newsBody(message);
  const same: SameNews = {
    kind: "same",
    from: message.from,
    to: message.to,
    incarnation: message.incarnation,
    digest: message.digest,
    same: hash,
    heard,
  };
  if (link.reads && link.holds === hash) return { link, send: "same", same };
  if (offer) {
    return { link: { ...link, probedAt: now }, send: "whole", message: whole, probe: same };
  }
  return { link, send: "whole", message: whole, probe: null };
}

/** A new incarnation of the party: what it held and read is forgotten. */
function lifeOf(link: NewsLink, incarnation: string): NewsLink {
  return link.incarnation === incarnation ? link : { ...NEW_LINK, incarnation };
}

/** A whole message from the party: what it says it holds, and its news kept for a "same". */
export function incoming(
  link: NewsLink,
  message: PeerMessage,
): { link: NewsLink; message: PeerMessage } {
  let next = lifeOf(link, message.incarnation);
  const { heard, ...plain } = message;
  if (heard !== undefined) next = { ...next, reads: true, holds: heard };
  if (message.kind === "state") next = { ...next, got: newsBody(plain) };
  return { link: next, message: plain };
}

/**
 * A "same" from the party: the news it names when we hold it, else null (dropped as stale). One
 * from a life of the party we have not had whole news from changes nothing: an honest party
 * sends whole news first in each life, so only a forgery (by a key holder) would make us forget.
 */
export function incomingSame(
  link: NewsLink,
  same: SameNews,
): { link: NewsLink; message: PeerMessage | null } {
  if (link.incarnation !== same.incarnation) return { link, message: null };
  const next = { ...link, reads: true, holds: same.heard };
  if (next.got?.hash !== same.same) return { link: next, message: null };
  return { link: next, message: { kind: "state", ...JSON.parse(next.got.json) } };
}
