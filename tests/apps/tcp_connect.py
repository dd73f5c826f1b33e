"""Connects over TCP and waits (blocking connect, the kernel's own SYN retries).

Scenario: the far end silently drops the SYNs (a blackhole), so the socket
stays SYN-SENT. If the port manager releases it, connect() fails with
ECONNABORTED; with --rebind the app then binds a new socket to the very same
local port with SO_REUSEADDR off, proving the port is really free.

Records: bound {port}, connecting {remote} (t = the first SYN), connected |
connect_failed {errno...}, rebound {port} | rebind_failed {errno...}, exit.
"""

import socket
import time

import applib


def main():
    p = applib.parser(__doc__)
    p.add_argument("--remote", required=True, help="HOST:PORT to connect to")
    p.add_argument("--rebind", action="store_true",
                   help="after a failed connect, bind the same port again")
    args = p.parse_args()
    rec = applib.start(args)

    def body():
        remote = applib.endpoint(args.remote)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        # Port 0: the kernel picks the port now, so it is known before the SYN.
        sock.bind(("0.0.0.0", 0))
        port = sock.getsockname()[1]
        rec.write("bound", port=port)
        sock.settimeout(args.max_seconds)
        rec.write("connecting", port=port, remote=args.remote)
        try:
            sock.connect(remote)
            rec.write("connected", **applib.local_of(sock))
            time.sleep(args.max_seconds)
            return
        except OSError as error:
            rec.write("connect_failed", port=port, **applib.error_fields(error))
        if args.rebind:
            # The aborted socket stays open while we bind: the port must be
            # free although its old file descriptor still exists.
            again = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
            try:
                again.bind(("0.0.0.0", port))
                rec.write("rebound", port=again.getsockname()[1])
            except OSError as error:
                rec.write("rebind_failed", port=port, **applib.error_fields(error))
            finally:
                again.close()
        sock.close()

    applib.run(rec, body)


if __name__ == "__main__":
    main()
