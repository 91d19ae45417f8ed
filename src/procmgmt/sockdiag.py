"""The listening TCP sockets, asked of Linux's sock_diag netlink interface.

``/proc/net/tcp`` lists *every* TCP socket, and the kernel formats the whole
table on each read: with a few hundred connections in TIME_WAIT (which
readiness checks themselves leave behind, one per successful connection) one
read costs milliseconds, and a hundred TCP checks polling it starve the
programs they wait for. A sock_diag dump asking for the LISTEN state only
walks the listening sockets (tens of microseconds), with the same inode and
uid per socket.

Only what :mod:`procmgmt.listeners` needs is decoded: the local port, the uid
and the inode of each listening IPv4 and IPv6 socket. :func:`listening`
returns None where netlink or sock_diag is unavailable (not Linux, a
seccomp filter, an old kernel); the caller then reads ``/proc``.
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
TCP_LISTEN = 10
#: struct nlmsghdr: length, type, flags, sequence, port id
NLMSG = struct.Struct("=IHHII")
#: struct inet_diag_req_v2 without its 48-byte socket id: family, protocol, ext,
#: pad, states
REQUEST = struct.Struct("=BBBBI")
SOCKID_SIZE = 48
#: struct inet_diag_msg: family, state, timer, retrans, then the socket id
#: (source port first, network order), then expires, rqueue, wqueue, uid, inode
MSG_HEAD = struct.Struct("=BBBB")
SPORT = struct.Struct("!H")
UID_INODE = struct.Struct("=II")
UID_OFFSET = MSG_HEAD.size + SOCKID_SIZE + 12


def _dump(family: int) -> list[tuple[int, int, int]]:
    """(port, uid, inode) of every listening TCP socket of ``family``."""
    request = REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN) + bytes(SOCKID_SIZE)
    header = NLMSG.pack(NLMSG.size + len(request), SOCK_DIAG_BY_FAMILY,
                        NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    found: list[tuple[int, int, int]] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(2.0)
        nl.sendto(header + request, (0, 0))
        while True:
            data = nl.recv(65536)
            if not data:
                raise OSError("sock_diag: empty answer")
            offset = 0
            while offset + NLMSG.size <= len(data):
                length, kind, _flags, _seq, _pid = NLMSG.unpack_from(data, offset)
                if length < NLMSG.size:
                    raise OSError("sock_diag: malformed answer")
                body = offset + NLMSG.size
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, body)[0]
                    raise OSError(code, "sock_diag refused the request")
                if kind == SOCK_DIAG_BY_FAMILY:
                    state = MSG_HEAD.unpack_from(data, body)[1]
                    (port,) = SPORT.unpack_from(data, body + MSG_HEAD.size)
                    uid, inode = UID_INODE.unpack_from(data, body + UID_OFFSET)
                    if state == TCP_LISTEN:
                        found.append((port, uid, inode))
                offset += (length + 3) & ~3


def listening() -> list[tuple[int, int, int]] | None:
    """(port, uid, inode) of every listening TCP socket (IPv4 and IPv6); None when
    the kernel cannot be asked this way."""
    if not hasattr(socket, "AF_NETLINK"):
        return None
    try:
        found = _dump(socket.AF_INET)
    except (OSError, struct.error):
        return None
    try:
        return found + _dump(socket.AF_INET6)
    except (OSError, struct.error):
        # A kernel without IPv6 has no IPv6 listeners; otherwise let /proc answer.
        return None if os.path.exists("/proc/net/tcp6") else found


__all__ = ["listening"]
