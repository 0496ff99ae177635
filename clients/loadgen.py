"""``tradingapp loadgen``: order flow against a running engine (interface stub, fleshed out next)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the load generator's options on ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="engine address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7001, help="engine port (default 7001)")


def main(args: argparse.Namespace) -> int:
    """Run the load generator; returns the process exit status."""
    print("loadgen: not implemented yet", file=sys.stderr)
    return 2
