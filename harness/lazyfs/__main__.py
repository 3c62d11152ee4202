"""``python -m harness.lazyfs BACKING MOUNTPOINT --control SOCKET``: mount and serve in
the foreground until SIGTERM, SIGINT or ``fusermount3 -u`` (then flush and unmount)."""

from __future__ import annotations

import argparse
import os
import sys

from harness.lazyfs.control import ControlServer
from harness.lazyfs.mount import is_stale, unmount
from harness.lazyfs.overlay import Overlays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.lazyfs",
        description="Mount BACKING at MOUNTPOINT; writes stay in memory until fsync.",
    )
    parser.add_argument("backing")
    parser.add_argument("mountpoint")
    parser.add_argument("--control", required=True, help="unix socket of the control interface")
    parser.add_argument("--debug", action="store_true", help="libfuse's request log on stderr")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.backing):
        parser.error(f"BACKING {args.backing} is not a directory")
    if is_stale(args.mountpoint):
        unmount(args.mountpoint)

    try:
        from harness.lazyfs.fs import LazyFS, serve  # needs libfuse 3; the client does not
    except (ImportError, OSError) as exc:
        parser.exit(2, f"lazyfs: {exc}; needs mfusepy (pip) and libfuse3-3, fuse3 (apt)\n")

    os.umask(0)  # the kernel applied the caller's umask to every mode we are given
    overlays = Overlays()
    control = ControlServer(args.control, overlays)
    fs = LazyFS(args.backing, overlays, on_init=control.start, on_destroy=control.stop)
    serve(fs, args.mountpoint, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
