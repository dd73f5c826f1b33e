#!/usr/bin/env python3
"""PPPoE discovery smoke test against the lab's pppoe-server, no portdial code.

Run inside the client namespace:
    ip netns exec pd-t1-cli python3 lab/smoke-padi.py eth0 [--service NAME] [--timeout S]

PADI -> PADO (prints AC-Name, AC-Cookie) -> PADR echoing the cookie -> PADS
(session id) -> waits for pppd's first LCP Configure-Request on 0x8864 (prints it
and the PADS-to-LCP delay) -> PADT. Exit 0 on success, 1 on failure.
"""
import argparse
import os
import socket
import struct
import sys
import time

ETH_P_DISC = 0x8863
ETH_P_SESS = 0x8864
ETH_P_ALL = 0x0003
BCAST = b"\xff" * 6

CODES = {0x09: "PADI", 0x07: "PADO", 0x19: "PADR", 0x65: "PADS", 0xA7: "PADT", 0xD3: "PADM"}
TAGS = {
    0x0000: "End-Of-List", 0x0101: "Service-Name", 0x0102: "AC-Name", 0x0103: "Host-Uniq",
    0x0104: "AC-Cookie", 0x0105: "Vendor-Specific", 0x0110: "Relay-Session-Id",
    0x0120: "PPP-Max-Payload", 0x0201: "Service-Name-Error", 0x0202: "AC-System-Error",
    0x0203: "Generic-Error",
}
LCP_OPTS = {1: "MRU", 2: "ACCM", 3: "Auth-Protocol", 4: "Quality", 5: "Magic-Number",
            7: "PFC", 8: "ACFC"}


def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


def tags_bytes(tags):
    return b"".join(struct.pack("!HH", t, len(v)) + v for t, v in tags)


def parse_tags(payload):
    out = []
    i = 0
    while i + 4 <= len(payload):
        t, ln = struct.unpack_from("!HH", payload, i)
        out.append((t, payload[i + 4:i + 4 + ln]))
        i += 4 + ln
        if t == 0:
            break
    return out


def frame(dst, src, ethertype, code, session, payload):
    return dst + src + struct.pack("!HBBHH", ethertype, 0x11, code, session, len(payload)) + payload


def fmt_tag(t, v):
    name = TAGS.get(t, f"0x{t:04x}")
    if t in (0x0101, 0x0102, 0x0201, 0x0202, 0x0203):
        return f"{name}={v.decode(errors='replace')!r}"
    return f"{name}={v.hex()} ({len(v)} bytes)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("--service", default="")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()

    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((args.iface, 0))
    mymac = s.getsockname()[4]
    print(f"client {args.iface} mac {mac_str(mymac)}")
    host_uniq = os.urandom(8)

    def recv_until(pred, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                data, addr = s.recvfrom(2048)
            except socket.timeout:
                return None
            if addr[2] == socket.PACKET_OUTGOING or len(data) < 20:
                continue
            if data[0:6] not in (mymac, BCAST):
                continue
            r = pred(data)
            if r is not None:
                return r

    def disc(code):
        def pred(d):
            et, vt, c, sid, ln = struct.unpack_from("!HBBHH", d, 12)
            if et != ETH_P_DISC or c != code:
                return None
            tags = parse_tags(d[20:20 + ln])
            hu = [v for t, v in tags if t == 0x0103]
            if hu and hu[0] != host_uniq:
                return None
            return d[6:12], sid, tags
        return pred

    base = [(0x0101, args.service.encode()), (0x0103, host_uniq)]
    t0 = time.monotonic()
    # PADI (retry like a real client: 3 tries)
    pado = None
    for attempt in range(3):
        s.send(frame(BCAST, mymac, ETH_P_DISC, 0x09, 0, tags_bytes(base)))
        print(f"-> PADI (try {attempt + 1}) service={args.service!r} host-uniq={host_uniq.hex()}")
        pado = recv_until(disc(0x07), 2.0)
        if pado:
            break
    if not pado:
        print("FAIL: no PADO")
        return 1
    ac_mac, _, tags = pado
    print(f"<- PADO from {mac_str(ac_mac)} after {1000 * (time.monotonic() - t0):.0f} ms")
    for t, v in tags:
        print(f"     {fmt_tag(t, v)}")
    cookie = [v for t, v in tags if t == 0x0104]
    ac_name = [v for t, v in tags if t == 0x0102]
    print(f"   AC-Name: {ac_name[0].decode() if ac_name else None}")
    print(f"   AC-Cookie: {cookie[0].hex() if cookie else None}")

    padr_tags = list(base)
    if cookie:
        padr_tags.append((0x0104, cookie[0]))
    s.send(frame(ac_mac, mymac, ETH_P_DISC, 0x19, 0, tags_bytes(padr_tags)))
    print("-> PADR (cookie echoed)")
    pads = recv_until(disc(0x65), 5.0)
    if not pads:
        print("FAIL: no PADS")
        return 1
    _, sid, tags = pads
    t_pads = time.monotonic()
    print(f"<- PADS session_id=0x{sid:04x} ({sid})")
    for t, v in tags:
        print(f"     {fmt_tag(t, v)}")
    if sid == 0:
        print("FAIL: PADS with session id 0 (error)")
        return 1

    def lcp_req(d):
        et, vt, c, ssid, ln = struct.unpack_from("!HBBHH", d, 12)
        if et == ETH_P_DISC and c == 0xA7 and ssid == sid:
            return ("PADT", d)
        if et != ETH_P_SESS or ssid != sid or c != 0:
            return None
        proto = struct.unpack_from("!H", d, 20)[0]
        if proto != 0xC021:
            return None
        code, ident, llen = struct.unpack_from("!BBH", d, 22)
        if code != 1:
            return None
        return ("LCP", d[22:22 + llen])

    got = recv_until(lcp_req, args.timeout)
    ok = True
    if not got:
        print(f"FAIL: no LCP Configure-Request within {args.timeout}s of PADS")
        ok = False
    elif got[0] == "PADT":
        print("FAIL: got PADT instead of LCP")
        ok = False
    else:
        lcp = got[1]
        dt = time.monotonic() - t_pads
        print(f"<- LCP Configure-Request id={lcp[1]} len={len(lcp)} {dt * 1000:.0f} ms after PADS")
        i = 4
        while i + 2 <= len(lcp):
            ot, ol = lcp[i], lcp[i + 1]
            if ol < 2:
                break
            val = lcp[i + 2:i + ol]
            desc = val.hex()
            if ot == 1:
                desc = str(struct.unpack("!H", val)[0])
            elif ot == 3:
                ap_ = struct.unpack_from("!H", val)[0]
                desc = {0xC023: "PAP", 0xC223: "CHAP"}.get(ap_, hex(ap_)) + (
                    f" alg=0x{val[2]:02x}" if len(val) > 2 else "")
            print(f"     {LCP_OPTS.get(ot, ot)}: {desc}")
            i += ol
        print(f"   pads_to_first_lcp_ms={dt * 1000:.0f}")

    s.send(frame(ac_mac, mymac, ETH_P_DISC, 0xA7, sid, tags_bytes([(0x0203, b"smoke test done")])))
    print(f"-> PADT session_id=0x{sid:04x}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
