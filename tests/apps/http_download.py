"""A receive-mostly bulk download: one HTTP/1.1 GET, then the body read at a
limited rate (as `curl --limit-rate` does, by reading slowly) for --seconds.

Records: started {port}, progress {bytes} every 2 s, then error {errno...} or
eof, and done {bytes, seconds}, exit.
"""

import socket
import time

import applib


def main():
    p = applib.parser(__doc__)
    p.add_argument("--host", required=True)
    p.add_argument("--path", default="/big.bin")
    p.add_argument("--rate", type=int, default=512 * 1024, help="bytes per second")
    p.add_argument("--seconds", type=float, default=25.0)
    args = p.parse_args()
    rec = applib.start(args)

    def body():
        sock = socket.create_connection((args.host, 80), timeout=10)
        rec.write("started", **applib.local_of(sock))
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
            % (args.path.encode(), args.host.encode())
        )
        begin = time.monotonic()
        received = 0
        last_progress = begin
        outcome = ("done", {})
        while True:
            elapsed = time.monotonic() - begin
            if elapsed >= args.seconds:
                break
            # Token bucket: never ahead of rate * elapsed.
            allowed = int(args.rate * elapsed) - received
            if allowed <= 0:
                time.sleep(0.02)
                continue
            try:
                chunk = sock.recv(min(allowed, 16384))
            except OSError as error:
                outcome = ("error", applib.error_fields(error))
                break
            if not chunk:
                outcome = ("eof", {})
                break
            received += len(chunk)
            now = time.monotonic()
            if now - last_progress >= 2.0:
                rec.write("progress", bytes=received)
                last_progress = now
        if outcome[0] != "done":
            rec.write(outcome[0], bytes=received, **outcome[1])
        rec.write("done", bytes=received, seconds=round(time.monotonic() - begin, 3))
        sock.close()

    applib.run(rec, body)


if __name__ == "__main__":
    main()
