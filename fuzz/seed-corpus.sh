#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds cut from the captures in
# captures/public/ and captures/lab/, at the layer each target reads:
#   ethernet, encap     whole Ethernet frames
#   session             frames re-wrapped in the target's input format (a mode
#                       byte, then chunks), as if the capture's AC sent them
#   pppoe_discovery     PPPoE header + payload (discovery and session)
#   control_options,
#   pap_chap            PPP control packets (LCP, IPCP, IPv6CP, CCP, PAP, CHAP)
#   ip_inspect          IP packets carried by PPP or straight on Ethernet
#   replay              whole capture files
#   local_text          secrets files and control requests (built seeds)
#   offload             IP packets behind an empty virtio-net header (a plain TUN read)
# Seeds are named by their SHA-1, as libFuzzer names what it adds, so running
# this again adds nothing twice. Usage: fuzz/seed-corpus.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
captures="$here/../captures"
exec python3 - "$captures" "$here/corpus" <<'PY'
import glob, hashlib, os, struct, sys

captures, corpus = sys.argv[1], sys.argv[2]
counts = {}

def save(target, data):
    if not data:
        return
    folder = os.path.join(corpus, target)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, hashlib.sha1(data).hexdigest())
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1

def records(blob):
    """(linktype, frame bytes) of each record of a classic pcap file."""
    if len(blob) < 24:
        return []
    magic = blob[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        return []
    linktype = struct.unpack(order + "I", blob[20:24])[0] & 0xFFFF
    out, at = [], 24
    while at + 16 <= len(blob):
        caplen = struct.unpack(order + "I", blob[at + 8:at + 12])[0]
        frame = blob[at + 16:at + 16 + caplen]  # cut short if the file is
        out.append((linktype, frame))
        at += 16 + caplen
    return out

VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
CONTROL = {0xC021, 0x8021, 0x8057, 0x80FD, 0xC023, 0xC223}
IP = {0x0021, 0x0057}

def ethernet_payload(frame):
    """(ethertype, payload) after walking up to two VLAN tags."""
    at = 12
    for _ in range(3):
        if len(frame) < at + 2:
            return None, b""
        ethertype = struct.unpack(">H", frame[at:at + 2])[0]
        if ethertype not in VLAN_TPIDS:
            return ethertype, frame[at + 2:]
        at += 4
    return None, b""

def ppp_protocol(packet):
    """(protocol, rest) of a PPP packet whose protocol field may be compressed."""
    if not packet:
        return None, b""
    if packet[0] & 1:
        return packet[0], packet[1:]
    if len(packet) < 2:
        return None, b""
    return struct.unpack(">H", packet[:2])[0], packet[2:]

def ppp_layer(protocol, rest):
    if protocol in CONTROL:
        save("control_options", rest)
        save("pap_chap", rest)
    elif protocol in IP:
        save("ip_inspect", rest)
        save("offload", bytes(10) + rest)

def chunk(kind, body):
    """One chunk of the session target's input; long bodies use the x8 length."""
    if len(body) <= 255:
        return bytes([kind, len(body)]) + body
    units = min((len(body) + 7) // 8, 255)
    body = (body + b"\0" * 7)[:units * 8]
    return bytes([kind | 4, units]) + body

# Modes of the session target: depth 0..3 and the AC's authentication.
SESSION_MODES = [0x00, 0x01, 0x05, 0x09, 0x02, 0x03, 0x07, 0x0B, 0x43]

for path in sorted(glob.glob(os.path.join(captures, "**", "*.pcap"), recursive=True)):
    blob = open(path, "rb").read()
    save("replay", blob)
    session_chunks = []
    for linktype, frame in records(blob):
        if linktype == 1:
            save("ethernet", frame)
            save("encap", frame)
            ethertype, payload = ethernet_payload(frame)
            if ethertype in (0x8863, 0x8864):
                save("pppoe_discovery", payload)
            if ethertype == 0x8863:
                session_chunks.append(chunk(0x12, payload))
            elif ethertype == 0x8864 and len(payload) >= 6:
                length = struct.unpack(">H", payload[4:6])[0]
                ppp = payload[6:6 + length]
                protocol, rest = ppp_protocol(ppp)
                if protocol is not None:
                    ppp_layer(protocol, rest)
                    session_chunks.append(chunk(0x11, struct.pack(">H", protocol) + rest))
            elif ethertype == 0x880B:
                protocol, rest = ppp_protocol(payload)
                ppp_layer(protocol, rest)
            elif ethertype in (0x0800, 0x86DD):
                save("ip_inspect", payload)
                save("offload", bytes(10) + payload)
        elif linktype in (9, 50, 204):
            packet = frame[1:] if linktype == 204 else frame
            if packet[:2] == b"\xff\x03":
                packet = packet[2:]
            protocol, rest = ppp_protocol(packet)
            ppp_layer(protocol, rest)
    # Session seeds: the capture's PPPoE traffic, replayed as the AC's, with
    # the session's own timers fired between every eight frames.
    if session_chunks:
        for start in range(0, len(session_chunks), 32):
            part = session_chunks[start:start + 32]
            body = b"".join(c + (bytes([3, 0]) if i % 8 == 7 else b"") for i, c in enumerate(part))
            for mode in SESSION_MODES:
                save("session", bytes([mode]) + body)

# Seeds for the session target that only drive the scripted AC, then let
# timers run (echo, retransmissions).
for mode in SESSION_MODES:
    save("session", bytes([mode]))
    save("session", bytes([mode]) + bytes([3, 0]) * 8)

# local_text: built, not captured: a pppd secrets file in the syntax pppd's
# own examples use, and one line of every control request.
save("local_text", b'# Secrets for authentication using PAP\n'
     b'# client\tserver\tsecret\t\t\tIP addresses\n'
     b'"alice@isp"\t*\t"pass word"\t*\n'
     b'bob\tbras1\t@/etc/portdial/bob\t192.0.2.10 -- noauth\n'
     b'* * "" \\\n  198.51.100.1\n')
save("local_text", b'{"cmd":"status"}\n{"cmd":"ports"}\n{"cmd":"scan"}\n'
     b'{"cmd":"release","port":443,"proto":"tcp"}\n{"cmd":"release","phantoms":true}\n'
     b'{"cmd":"sleep","on":true}\n{"cmd":"events"}\n{"cmd":"history"}\n')

for target in sorted(counts):
    print(f"{target}: {counts[target]} new seeds")
PY
