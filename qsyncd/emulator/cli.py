"""``qsyncd emulator``: run the QingStor emulator in the foreground until SIGTERM/SIGINT.

Logs one line per request to stderr (never the Authorization header or a secret). Prints the
default credentials when none were given; a user-supplied secret is never printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from qsyncd.emulator.emulator import DEFAULT_CREDENTIALS, Emulator


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``qsyncd emulator``."""
    p = argparse.ArgumentParser(prog="qsyncd emulator", description="Run a local QingStor-compatible server.")
    p.add_argument("--root", required=True, type=Path, help="directory holding buckets and objects")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", default=9000, type=int, help="port to listen on; 0 picks a free port (default 9000)")
    p.add_argument("--access-key-id", default=None, help="access key id (default: built-in test credentials)")
    p.add_argument("--secret-access-key", default=None, help="secret access key (required with --access-key-id)")
    p.add_argument("--bucket", action="append", default=[], help="create this bucket at start (repeatable)")
    p.add_argument("--port-file", type=Path, default=None, help="write the bound port here once listening")
    p.add_argument("--seed", type=int, default=None, help="seed for probabilistic faults")
    return p


def _write_port_file(path: Path, port: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(f"{port}\n", encoding="ascii")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    """Run the emulator; returns the exit code (0 after a clean stop on SIGTERM/SIGINT)."""
    args = build_parser().parse_args(argv)
    if (args.access_key_id is None) != (args.secret_access_key is None):
        print("qsyncd emulator: give both --access-key-id and --secret-access-key, or neither", file=sys.stderr)
        return 2
    credentials = None if args.access_key_id is None else {args.access_key_id: args.secret_access_key}
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("qsyncd.emulator")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        emu = Emulator(
            args.root, host=args.host, port=args.port, credentials=credentials, buckets=args.bucket, seed=args.seed
        )
        emu.start()
    except (OSError, ValueError) as exc:
        print(f"qsyncd emulator: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        if credentials is None:
            ((akid, secret),) = DEFAULT_CREDENTIALS.items()
            print(f"emulator_credentials access_key_id={akid} secret_access_key={secret}", file=sys.stderr)
        else:
            print(f"emulator_credentials access_key_id={args.access_key_id} secret_access_key=<given>", file=sys.stderr)
        print(f"emulator_listening url={emu.url} root={emu.root}", file=sys.stderr, flush=True)
        if args.port_file is not None:
            _write_port_file(args.port_file, emu.port)
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
        print("emulator_stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
