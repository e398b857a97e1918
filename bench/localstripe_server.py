"""Run localstripe's aiohttp app on a loopback address only.

``localstripe``'s own command binds ``::`` (every interface); the benchmark must not expose
anything, so this builds the same server as ``localstripe.server.start()`` on a socket bound to
127.0.0.1. Like ``--from-scratch`` it starts with an empty store (the benchmark also deletes
``/tmp/localstripe.pickle`` first). Its design is kept as is: every write still pickles the
whole store to ``/tmp/localstripe.pickle``. The per-request access log is off by default, as it is
for Caja in the benchmark.

Usage: ``python bench/localstripe_server.py --port 8420``
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket

from aiohttp import web
from localstripe.server import app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--access-log", action="store_true", help="log every request, like `localstripe`")
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error(f"{args.host} is not a loopback address")

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))

    access_log = None
    if args.access_log:
        access_log = logging.getLogger("aiohttp.access")
        access_log.setLevel(logging.DEBUG)
        access_log.addHandler(logging.StreamHandler())
    web.run_app(app, sock=sock, access_log=access_log, print=lambda *_: None)


if __name__ == "__main__":
    main()
