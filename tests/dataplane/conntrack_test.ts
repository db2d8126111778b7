import { describe, expect, test } from "bun:test";
import { parseConntrack } from "../../src/dataplane/conntrack.ts";

const listing =
  `tcp      6 431998 ESTABLISHED src=10.9.2.2 dst=10.9.0.1 sport=51234 dport=4306 packets=12 bytes=900 src=10.9.1.2 dst=10.9.1.1 sport=3306 dport=51234 packets=10 bytes=2400 [ASSURED] mark=1191182337 use=1
tcp      6 118 SYN_SENT src=10.9.2.2 dst=10.9.0.1 sport=51300 dport=4306 packets=1 bytes=60 [UNREPLIED] src=10.9.1.3 dst=10.9.1.1 sport=3306 dport=51300 packets=0 bytes=0 mark=1191182338 use=1
udp      17 29 src=10.9.2.2 dst=10.9.0.1 sport=5353 dport=5353 packets=1 bytes=80 [UNREPLIED] src=10.9.0.1 dst=10.9.2.2 sport=5353 dport=5353 packets=0 bytes=0 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.
`;

describe("parseConntrack", () => {
  const flows = parseConntrack(listing);

  test("reads TCP flows only, both directions, with counters and the decimal mark", () => {
    expect(flows).toHaveLength(2);
    expect(flows[0]).toEqual({
      state: "ESTABLISHED",
      original: {
        src: "10.9.2.2",
        dst: "10.9.0.1",
        sport: 51234,
        dport: 4306,
        packets: 12,
        bytes: 900,
      },
      reply: {
        src: "10.9.1.2",
        dst: "10.9.1.1",
        sport: 3306,
        dport: 51234,
        packets: 10,
        bytes: 2400,
      },
      mark: 0x47000001,
    });
  });

  test("a flow not yet answered still names its node in the reply direction", () => {
    expect(flows[1].state).toBe("SYN_SENT");
    expect(flows[1].reply.src).toBe("10.9.1.3");
    expect(flows[1].mark).toBe(0x47000002);
  });

  test("truncated or garbled lines are skipped, not thrown", () => {
    expect(parseConntrack("tcp 6 1 ESTABLISHED src=1.2.3.4 dst=")).toEqual([]);
    expect(parseConntrack("tcp 6 1 ESTABLISHED src=a dst=b sport=x dport=1 src=c")).toEqual([]);
    expect(parseConntrack("")).toEqual([]);
  });
});
