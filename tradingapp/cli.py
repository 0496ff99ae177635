"""The ``tradingapp`` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _serve(args: argparse.Namespace) -> int:
    from tradingapp import logs
    from tradingapp.config import load_config
    from tradingapp.latency import require_hdrhistogram
    from tradingapp.server import run, serve

    if args.latency_stats:
        try:
            require_hdrhistogram()
        except ImportError as e:
            print(f"tradingapp serve: {e}", file=sys.stderr)
            return 2
    config = load_config(args.config)
    data_dir = Path(args.data_dir) if args.data_dir else config.persistence.data_dir
    try:
        logs.configure(data_dir, console=not args.quiet)
    except OSError as e:
        print(f"tradingapp serve: cannot use data dir {data_dir}: {e.strerror or e}", file=sys.stderr)
        return 1
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    code: int = run(serve(config, host, port, data_dir, args.fsync, args.repair, args.latency_stats))
    return code


def _engine_data_dir(command: str, data_dir: str) -> Path | None:
    """``data_dir`` if an engine has written there, else None after saying so on stderr: a
    mistyped path must not print an empty journal or the config's opening balances."""
    path = Path(data_dir)
    if (path / "journal").is_dir() or (path / "snapshots").is_dir():
        return path
    print(f"tradingapp {command}: no engine data (journal or snapshots) in {path}", file=sys.stderr)
    return None


def _journal(args: argparse.Namespace) -> int:
    from tradingapp.audit import print_journal

    data_dir = _engine_data_dir("journal", args.data_dir)
    return 2 if data_dir is None else print_journal(data_dir, args.config, sys.stdout)


def _accounts(args: argparse.Namespace) -> int:
    from tradingapp.audit import print_accounts

    data_dir = _engine_data_dir("accounts", args.data_dir)
    return 2 if data_dir is None else print_accounts(data_dir, args.config, sys.stdout)


def _loadgen(args: argparse.Namespace) -> int:
    from clients.loadgen import main as loadgen_main

    return loadgen_main(args)


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535; the OS would wrap 70000 to 4464."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, not {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tradingapp",
        description="TradingApp: a cryptocurrency matching engine (price-time books, msgpack/JSON-lines).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the engine")
    serve.add_argument("--config", help="venue TOML file (default: the embedded demo venue)")
    serve.add_argument("--data-dir", help="journal, snapshots and logs (default: from the config, ./data)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=port_number, help="port to listen on (default 7001; 0 picks a free one)"
    )
    serve.add_argument(
        "--fsync", choices=("always", "batch", "off"), help="journal durability (default batch)"
    )
    serve.add_argument("--repair", action="store_true", help="truncate the journal at mid-log damage")
    serve.add_argument(
        "--latency-stats",
        action="store_true",
        help="record order, BBO and trade latencies (read with a stats request; needs the bench extra)",
    )
    serve.add_argument(
        "--quiet", action="store_true", help="no console log (the JSON log file is still written)"
    )
    serve.set_defaults(handler=_serve)

    journal = commands.add_parser("journal", help="print the journal as JSON lines (the audit trail)")
    journal.add_argument("--data-dir", default="./data")
    journal.add_argument("--config", help="venue TOML file used by the engine (default: the demo venue)")
    journal.set_defaults(handler=_journal)

    accounts = commands.add_parser("accounts", help="print every account's balances from a data dir")
    accounts.add_argument("--data-dir", default="./data")
    accounts.add_argument("--config", help="venue TOML file used by the engine (default: the demo venue)")
    accounts.set_defaults(handler=_accounts)

    loadgen = commands.add_parser("loadgen", help="generate order flow against a running engine")
    from clients.loadgen import add_arguments

    add_arguments(loadgen)
    loadgen.set_defaults(handler=_loadgen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from tradingapp.config import ConfigError

    try:
        return int(args.handler(args) or 0)
    except ConfigError as e:
        # the operator's to fix, not a bug: the message names the file and the key
        print(f"tradingapp {args.command}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (``tradingapp journal | head``): stop quietly, as other CLI tools
        # do; stdout is pointed at /dev/null so that the interpreter's final flush cannot fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
