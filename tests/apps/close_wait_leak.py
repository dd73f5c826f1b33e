"""A CLOSE-WAIT leak: an HTTP/1.0 GET (the server closes after the response),
the body read to EOF, and then the socket is never closed — the bug of an
application that forgets close(). The app only watches its pending socket
error (SO_ERROR), so it learns when the port manager releases the port.

Records: started {port}, eof {bytes} (now CLOSE-WAIT), error {errno...}, exit.
"""

import socket
import time

import applib


def main():
    p = applib.parser(__doc__)
    p.add_argument("--host", required=True)
    p.add_argument("--path", default="/index.html")
    args = p.parse_args()
    rec = applib.start(args)

    def body():
        sock = socket.create_connection((args.host, 80), timeout=10)
        rec.write("started", **applib.local_of(sock))
        sock.sendall(b"GET %s HTTP/1.0\r\n\r\n" % args.path.encode())
        received = 0
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += len(chunk)
        rec.write("eof", bytes=received)
        begin = time.monotonic()
        while time.monotonic() - begin < args.max_seconds:
            pending = applib.socket_error(sock)
            if pending:
                rec.write("error", **applib.error_fields(pending))
                break
            time.sleep(0.1)
        # Deliberately no close() before this point: that is the leak.
        sock.close()

    applib.run(rec, body)


if __name__ == "__main__":
    main()
