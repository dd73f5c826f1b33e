"""A healthy but idle TCP connection: one exchange with an echo server, then
silence, blocked in recv() as a chat client waiting for messages would be.

Records: started {port}, exchanged {bytes}, then error {errno...} (the port
released) or eof (the server closed), exit.
"""

import socket

import applib


def main():
    p = applib.parser(__doc__)
    p.add_argument("--remote", required=True, help="HOST:PORT of a TCP echo")
    args = p.parse_args()
    rec = applib.start(args)

    def body():
        sock = socket.create_connection(applib.endpoint(args.remote), timeout=10)
        rec.write("started", remote=args.remote, **applib.local_of(sock))
        message = b"hello from an idle app\n"
        sock.sendall(message)
        echoed = b""
        while len(echoed) < len(message):
            chunk = sock.recv(len(message) - len(echoed))
            if not chunk:
                break
            echoed += chunk
        rec.write("exchanged", bytes=len(echoed), ok=echoed == message)
        sock.settimeout(args.max_seconds)
        try:
            data = sock.recv(1)
            rec.write("eof" if not data else "unexpected_data", bytes=len(data))
        except socket.timeout:
            rec.write("timeout")
        except OSError as error:
            rec.write("error", **applib.error_fields(error))
        sock.close()

    applib.run(rec, body)


if __name__ == "__main__":
    main()
