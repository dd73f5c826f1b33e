#!/usr/bin/env python3
"""Full PPPoE session smoke test against the lab, no portdial code.

    ip netns exec pd-t1-cli python3 lab/smoke-ppp.py eth0 [--user U --password P]
        [--hold SECONDS] [--expect-down]

Discovery (PADI/PADO/PADR/PADS), LCP (our ConfReq retransmitted every second,
server's ConfReq acked), PAP or CHAP-MD5 as the server asks, IPCP (address and
DNS via Nak), then a UDP datagram to 192.0.2.1:7 and an ICMP echo to 192.0.2.1
must come back. With --hold it stays up answering LCP echoes and prints what
happens (useful with labctl freeze/server-restart); --expect-down succeeds only
if the server ends the session (PADT or LCP Terminate-Request) during the hold.
Ends with LCP Terminate-Request + PADT. Exit 0 on success.
"""
import argparse
import hashlib
import os
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
DISC, SESS = 0x8863, 0x8864
BCAST = b"\xff" * 6
LCP, PAP, CHAP, IPCP, IPV4 = 0xC021, 0xC023, 0xC223, 0x8021, 0x0021


def tags_bytes(tags):
    return b"".join(struct.pack("!HH", t, len(v)) + v for t, v in tags)


def parse_tags(p):
    out, i = [], 0
    while i + 4 <= len(p):
        t, ln = struct.unpack_from("!HH", p, i)
        out.append((t, p[i + 4:i + 4 + ln]))
        i += 4 + ln
    return out


def parse_opts(b):
    out, i = [], 0
    while i + 2 <= len(b):
        t, ln = b[i], b[i + 1]
        if ln < 2:
            break
        out.append((t, b[i + 2:i + ln]))
        i += ln
    return out


def opts_bytes(opts):
    return b"".join(bytes([t, len(v) + 2]) + v for t, v in opts)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ident):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


class Session:
    def __init__(self, iface, verbose):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.bind((iface, 0))
        self.mac = self.s.getsockname()[4]
        self.verbose = verbose
        self.ac = None
        self.sid = 0
        self.t0 = time.monotonic()

    def log(self, msg):
        print(f"[{time.monotonic() - self.t0:7.3f}] {msg}", flush=True)

    def send_disc(self, dst, code, sid, tags):
        p = tags_bytes(tags)
        self.s.send(dst + self.mac + struct.pack("!HBBHH", DISC, 0x11, code, sid, len(p)) + p)

    def send_ppp(self, proto, payload):
        p = struct.pack("!H", proto) + payload
        self.s.send(self.ac + self.mac + struct.pack("!HBBHH", SESS, 0x11, 0, self.sid, len(p)) + p)

    def send_cp(self, proto, code, ident, data):
        self.send_ppp(proto, struct.pack("!BBH", code, ident, 4 + len(data)) + data)

    def recv(self, timeout):
        """Returns ('disc', code, sid, tags, src) or ('ppp', proto, payload) or None."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                d, addr = self.s.recvfrom(2048)
            except socket.timeout:
                return None
            if addr[2] == socket.PACKET_OUTGOING or len(d) < 20 or d[0:6] not in (self.mac, BCAST):
                continue
            et, _, code, sid, ln = struct.unpack_from("!HBBHH", d, 12)
            if et == DISC:
                return ("disc", code, sid, parse_tags(d[20:20 + ln]), d[6:12])
            if et == SESS and sid == self.sid and self.sid and code == 0:
                return ("ppp", struct.unpack_from("!H", d, 20)[0], d[22:20 + ln])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("--user", default="portdial")
    ap.add_argument("--password", default="portdial-secret")
    ap.add_argument("--service", default="")
    ap.add_argument("--hold", type=float, default=0.0)
    ap.add_argument("--expect-down", action="store_true")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    S = Session(a.iface, a.verbose)
    host_uniq = os.urandom(4)

    # ---- discovery
    pado = None
    for _ in range(3):
        S.send_disc(BCAST, 0x09, 0, [(0x0101, a.service.encode()), (0x0103, host_uniq)])
        end = time.monotonic() + 2
        while not pado and time.monotonic() < end:
            r = S.recv(end - time.monotonic())
            if r and r[0] == "disc" and r[1] == 0x07:
                pado = r
        if pado:
            break
    if not pado:
        S.log("FAIL: no PADO")
        return 1
    S.ac = pado[4]
    tags = dict(pado[3])
    S.log(f"PADO from {S.ac.hex(':')} AC-Name={tags.get(0x0102, b'').decode()!r}")
    padr = [(0x0101, a.service.encode()), (0x0103, host_uniq)]
    if 0x0104 in tags:
        padr.append((0x0104, tags[0x0104]))
    S.send_disc(S.ac, 0x19, 0, padr)
    r = None
    end = time.monotonic() + 5
    while time.monotonic() < end:
        r = S.recv(end - time.monotonic())
        if r and r[0] == "disc" and r[1] == 0x65:
            break
    if not r or r[0] != "disc" or r[1] != 0x65 or r[2] == 0:
        S.log("FAIL: no PADS")
        return 1
    S.sid = r[2]
    S.log(f"PADS session 0x{S.sid:04x}")

    # ---- PPP state
    magic = os.urandom(4)
    st = dict(our_lcp_acked=False, their_lcp_acked=False, auth=None, auth_done=False,
              ipcp_req=[(3, b"\0" * 4), (129, b"\0" * 4), (131, b"\0" * 4)],
              ipcp_ours=False, ipcp_theirs=False, server_ip=None, down=None, echo_req=0)
    ident = [1]
    last_lcp = [0.0]
    last_ipcp = [0.0]

    def nid():
        ident[0] = (ident[0] + 1) & 0xFF
        return ident[0]

    def handle(proto, p):
        if len(p) < 4 and proto != IPV4:
            return None
        if proto == LCP:
            code, idn, ln = struct.unpack_from("!BBH", p)
            data = p[4:ln]
            if code == 1:
                opts = parse_opts(data)
                for t, v in opts:
                    if t == 3:
                        st["auth"] = struct.unpack_from("!H", v)[0]
                S.send_cp(LCP, 2, idn, data)  # ack everything the server asks
                if not st["their_lcp_acked"]:
                    S.log("LCP: server ConfReq " + " ".join(f"{t}:{v.hex()}" for t, v in opts) + " -> Ack")
                st["their_lcp_acked"] = True
            elif code == 2:
                if not st["our_lcp_acked"]:
                    S.log("LCP: our ConfReq acked")
                st["our_lcp_acked"] = True
            elif code in (3, 4):
                S.log(f"LCP: our ConfReq {'Nak' if code == 3 else 'Rej'}ed: {data.hex()}")
                return "FAIL"
            elif code == 5:
                S.log(f"LCP: Terminate-Request from server {data!r}")
                S.send_cp(LCP, 6, idn, b"")
                st["down"] = "LCP Terminate-Request"
            elif code == 9:
                st["echo_req"] += 1
                S.send_cp(LCP, 10, idn, magic + data[4:])
            elif code in (10, 11):
                pass
            else:
                S.log(f"LCP: code {code}")
        elif proto == PAP:
            code, idn, ln = struct.unpack_from("!BBH", p)
            msg = p[5:5 + p[4]] if ln > 4 else b""
            if code == 2:
                S.log(f"PAP: Authenticate-Ack {msg!r}")
                st["auth_done"] = True
            elif code == 3:
                S.log(f"PAP: Authenticate-Nak {msg!r}")
                return "FAIL"
        elif proto == CHAP:
            code, idn, ln = struct.unpack_from("!BBH", p)
            if code == 1:
                vl = p[4]
                chal = p[5:5 + vl]
                name = p[5 + vl:ln]
                resp = hashlib.md5(bytes([idn]) + a.password.encode() + chal).digest()
                S.log(f"CHAP: Challenge from {name.decode(errors='replace')!r} -> Response")
                S.send_cp(CHAP, 2, idn, bytes([16]) + resp + a.user.encode())
            elif code == 3:
                S.log(f"CHAP: Success {p[4:ln]!r}")
                st["auth_done"] = True
            elif code == 4:
                S.log(f"CHAP: Failure {p[4:ln]!r}")
                return "FAIL"
        elif proto == IPCP:
            code, idn, ln = struct.unpack_from("!BBH", p)
            data = p[4:ln]
            opts = parse_opts(data)
            if code == 1:
                for t, v in opts:
                    if t == 3:
                        st["server_ip"] = v
                S.send_cp(IPCP, 2, idn, data)
                if not st["ipcp_theirs"]:
                    S.log(f"IPCP: server address {socket.inet_ntoa(st['server_ip'] or bytes(4))} -> Ack")
                st["ipcp_theirs"] = True
            elif code == 3:  # Nak: take the suggested values
                st["ipcp_req"] = [(t, dict(opts).get(t, v)) for t, v in st["ipcp_req"]]
                last_ipcp[0] = 0.0
            elif code == 4:
                rej = {t for t, _ in opts}
                st["ipcp_req"] = [(t, v) for t, v in st["ipcp_req"] if t not in rej]
                last_ipcp[0] = 0.0
            elif code == 2:
                st["ipcp_ours"] = True
                d = dict(st["ipcp_req"])
                S.log("IPCP: acked: local " + socket.inet_ntoa(d[3]) +
                      (" dns " + socket.inet_ntoa(d[129]) if 129 in d else "") +
                      (" " + socket.inet_ntoa(d[131]) if 131 in d else ""))
            elif code == 5:
                S.send_cp(IPCP, 6, idn, b"")
        elif proto == IPV4:
            return ("ip", p)
        else:
            # Protocol-Reject anything else (CCP, IPv6CP, ...)
            S.log(f"Protocol-Reject 0x{proto:04x}")
            S.send_cp(LCP, 8, nid(), struct.pack("!H", proto) + p[:64])
        return None

    def pump(until, deadline, resend=None):
        last_resend = 0.0
        while time.monotonic() < deadline:
            if resend and time.monotonic() - last_resend >= 0.5:
                resend()
                last_resend = time.monotonic()
            if st["down"]:
                return False
            now = time.monotonic()
            if not st["our_lcp_acked"] and now - last_lcp[0] >= 1.0:
                S.send_cp(LCP, 1, nid(), opts_bytes([(1, struct.pack("!H", 1492)), (5, magic)]))
                last_lcp[0] = now
            if (st["our_lcp_acked"] and st["their_lcp_acked"] and (st["auth"] is None or st["auth_done"])
                    and not st["ipcp_ours"] and now - last_ipcp[0] >= 1.0):
                S.send_cp(IPCP, 1, nid(), opts_bytes(st["ipcp_req"]))
                last_ipcp[0] = now
            r = S.recv(0.2)
            if r is None:
                continue
            if r[0] == "disc":
                if r[1] == 0xA7 and r[2] == S.sid:
                    S.log("PADT from server")
                    st["down"] = "PADT"
                    return False
                continue
            out = handle(r[1], r[2])
            if out == "FAIL":
                raise SystemExit(1)
            if until(out):
                return True
        return False

    auth_sent = [False]

    def lcp_and_auth(_):
        if st["our_lcp_acked"] and st["their_lcp_acked"] and st["auth"] == PAP and not auth_sent[0]:
            u, pw = a.user.encode(), a.password.encode()
            S.send_cp(PAP, 1, nid(), bytes([len(u)]) + u + bytes([len(pw)]) + pw)
            S.log("PAP: Authenticate-Request sent")
            auth_sent[0] = True
        return st["ipcp_ours"] and st["ipcp_theirs"]

    t_pads = time.monotonic()
    if not pump(lcp_and_auth, time.monotonic() + a.timeout):
        S.log(f"FAIL: session not up ({st['down'] or 'timeout'})")
        return 1
    S.log(f"session up {1000 * (time.monotonic() - t_pads):.0f} ms after PADS")
    me, srv = dict(st["ipcp_req"])[3], st["server_ip"] or socket.inet_aton("192.0.2.1")

    ok = True
    # UDP echo
    payload = b"portdial-lab udp echo " + os.urandom(8).hex().encode()
    udp = struct.pack("!HHHH", 40000, 7, 8 + len(payload), 0) + payload
    ph = me + srv + struct.pack("!BBH", 0, 17, len(udp))
    udp = udp[:6] + struct.pack("!H", csum(ph + udp) or 0xFFFF) + udp[8:]
    # The server's pppd drops IP until its ipcp_up() has run (NPMODE_PASS), which can
    # lag IPCP-Opened on our side: resend every 0.5 s.
    t_udp = time.monotonic()
    got = pump(lambda o: o and o[0] == "ip" and o[1][9] == 17 and o[1][28:] == payload, time.monotonic() + 5,
               lambda: S.send_ppp(IPV4, ipv4(me, srv, 17, udp, 1)))
    if got:
        S.log(f"UDP echo round trip (incl. resends) {1000 * (time.monotonic() - t_udp):.0f} ms")
    S.log(f"UDP echo via 192.0.2.1:7: {'ok' if got else 'FAIL'}")
    ok &= got
    # ICMP echo
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + b"portdial-lab ping"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    got = pump(lambda o: o and o[0] == "ip" and o[1][9] == 1 and o[1][20] == 0, time.monotonic() + 5,
               lambda: S.send_ppp(IPV4, ipv4(me, srv, 1, icmp, 2)))
    S.log(f"ICMP echo to {socket.inet_ntoa(srv)}: {'ok' if got else 'FAIL'}")
    ok &= got

    if a.hold > 0:
        S.log(f"holding the session for {a.hold:.0f} s")
        pump(lambda o: False, time.monotonic() + a.hold)
        S.log(f"hold done: server LCP echo requests answered: {st['echo_req']}, down: {st['down']}")
        if a.expect_down:
            ok &= bool(st["down"])
        elif st["down"]:
            ok = False
    if not st["down"]:
        S.send_cp(LCP, 5, nid(), b"bye")
        pump(lambda o: False, time.monotonic() + 0.5)
        S.send_disc(S.ac, 0xA7, S.sid, [])
        S.log("LCP Terminate-Request + PADT sent")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
