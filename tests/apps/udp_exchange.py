"""Sends a UDP datagram every --interval seconds and waits for answers.

Against the lab's UDP echo this is a healthy request/response exchange;
against a silently dropped address nothing ever comes back. The app stops at
the first socket error (a released UDP socket reports ECONNABORTED), when
--seconds have passed, or at --max-seconds.

Records: started {port, local_ip}, sent {seq}, answer {seq, bytes},
error {errno...}, done {sent, answers}, exit.
"""

import socket
import time

import applib


def main():
    p = applib.parser(__doc__)
    p.add_argument("--remote", required=True, help="HOST:PORT")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=0.0,
                   help="stop after this long (0: only on error or --max-seconds)")
    args = p.parse_args()
    rec = applib.start(args)

    def body():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(applib.endpoint(args.remote))
        rec.write("started", remote=args.remote, **applib.local_of(sock))
        begin = time.monotonic()
        limit = args.seconds if args.seconds > 0 else args.max_seconds
        sent = answers = seq = 0
        failed = None
        while failed is None and time.monotonic() - begin < limit:
            # A pending error first: after a release the socket is
            # disconnected, and send() would only say EDESTADDRREQ.
            pending = applib.socket_error(sock)
            if pending:
                failed = applib.error_fields(pending)
                break
            try:
                sock.send(b"portdial-lab %d\n" % seq)
                rec.write("sent", seq=seq)
                sent += 1
            except OSError as error:
                failed = applib.error_fields(error)
                break
            next_send = time.monotonic() + args.interval
            while time.monotonic() < next_send:
                sock.settimeout(max(0.01, next_send - time.monotonic()))
                try:
                    data = sock.recv(2048)
                    answers += 1
                    rec.write("answer", seq=seq, bytes=len(data))
                except socket.timeout:
                    pass
                except OSError as error:
                    failed = applib.error_fields(error)
                    break
            seq += 1
        if failed is not None:
            rec.write("error", **failed)
        rec.write("done", sent=sent, answers=answers)
        sock.close()

    applib.run(rec, body)


if __name__ == "__main__":
    main()
