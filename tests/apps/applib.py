"""Shared helpers of the port-manager lab apps (tests/ports_lab.rs).

Each app stands in for a real application: real kernel sockets in the lab's
client namespace. It names its process (so `[[ports.class]] processes = [..]`
can match it), and appends one JSON object per line to its record file:
`{"t": unix seconds, "event": ..., "pid": ..., ...}`. The test reads the file
while the app runs, so every line is written whole and flushed at once.
"""

import argparse
import ctypes
import errno
import json
import os
import socket
import sys
import time

PR_SET_NAME = 15


class Recorder:
    def __init__(self, path):
        self.path = path

    def write(self, event, **fields):
        record = {"t": time.time(), "event": event, "pid": os.getpid()}
        record.update(fields)
        line = json.dumps(record) + "\n"
        # One write(2) per line with O_APPEND: a reader never sees half a line
        # mixed with another.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def set_process_name(name):
    """Sets /proc/self/comm (at most 15 bytes), what the port manager classifies by."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def error_fields(error):
    """errno, its symbolic name and the text of an OSError (or of a raw errno)."""
    number = error if isinstance(error, int) else error.errno
    return {
        "errno": number,
        "errname": errno.errorcode.get(number, "?") if number else None,
        "error": os.strerror(number) if number else str(error),
    }


def socket_error(sock):
    """The pending socket error (SO_ERROR), read and cleared; 0 if none."""
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--name", required=True, help="process name (comm) to take")
    p.add_argument("--out", required=True, help="record file (JSON lines)")
    p.add_argument("--max-seconds", type=float, default=240.0,
                   help="give up after this long whatever happens")
    return p


def start(args):
    set_process_name(args.name)
    return Recorder(args.out)


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def local_of(sock):
    host, port = sock.getsockname()[:2]
    return {"local_ip": host, "port": port}


def run(rec, body):
    """Runs `body()`; an unexpected exception is recorded before it propagates."""
    try:
        body()
    except Exception as error:
        rec.write("crashed", error=repr(error))
        raise
    finally:
        rec.write("exit")


if __name__ == "__main__":
    sys.exit("applib is a module")
