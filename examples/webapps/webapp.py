#!/usr/bin/env python3
"""A small test web application (stdlib only).

It answers every GET with a page naming its instance and port, like the
original's C webapp. Configuration comes from the environment: ``PORT``
(required), ``INSTANCE_NAME`` (optional), ``BIND`` (default 127.0.0.1) and,
in daemon mode, ``PID_FILE``.

Modes:
- foreground (default): serve until SIGTERM or SIGINT;
- ``-D``: a proper daemon: double fork, new session, umask 0, chdir /,
  stdio to /dev/null, exclusive pid file, and readiness reported to the
  parent through a pipe, so the parent exits only once the port accepts
  connections (non-zero with a message if the daemon could not start).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import http.server
import os
import signal
import socketserver
import sys

PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Simple test webapp</title></head>\n"
    "<body><p>Simple test webapp listening on port: {port}</p>\n"
    "<p>instance: {instance}</p></body></html>\n"
)


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the instance page."""

    def do_GET(self) -> None:
        body = PAGE.format(port=self.server.server_address[1],
                           instance=os.environ.get("INSTANCE_NAME", "webapp")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server() -> Server:
    port = os.environ.get("PORT")
    if not port or not port.isdigit():
        raise SystemExit("webapp: set PORT to the port number to listen on")
    return Server((os.environ.get("BIND", "127.0.0.1"), int(port)), Handler)


def serve(server: Server) -> None:
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def daemonize() -> None:
    pid_file = os.environ.get("PID_FILE")
    if not pid_file:
        raise SystemExit("webapp: -D needs PID_FILE in the environment")
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        # Original parent: wait for the daemon's verdict.
        os.close(write_end)
        status = os.read(read_end, 512).decode(errors="replace")
        if status == "ok":
            os._exit(0)
        sys.stderr.write(f"webapp: daemon failed to start: {status or 'no report'}\n")
        os._exit(1)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.umask(0)
    os.chdir("/")

    def report(message: str) -> None:
        os.write(write_end, message.encode())
        os.close(write_end)

    try:
        fd = os.open(pid_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                report(f"pid file {pid_file} is locked by a running instance")
                os._exit(1)
            raise
        server = make_server()
    except (OSError, SystemExit) as exc:
        report(str(exc))
        os._exit(1)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(devnull, target)
    report("ok")
    try:
        serve(server)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pid_file)


def main(argv: list[str]) -> None:
    if argv[1:] == ["-D"]:
        daemonize()
    elif argv[1:]:
        raise SystemExit("usage: webapp.py [-D]")
    else:
        serve(make_server())


if __name__ == "__main__":
    main(sys.argv)
