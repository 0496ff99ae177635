"""``python -m tradingapp.protocol``: print or refresh the schema reference in the docs.

``--markdown`` prints the generated reference; ``--update-docs [PATH]`` rewrites the generated
part of ``docs/protocol.md``; ``--check-docs [PATH]`` exits 1 when that part is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tradingapp.protocol.markdown import generated_part, render_markdown, update_docs

DEFAULT_DOC = Path("docs/protocol.md")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tradingapp.protocol", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="print the generated reference")
    group.add_argument("--update-docs", nargs="?", const=DEFAULT_DOC, type=Path, metavar="PATH")
    group.add_argument("--check-docs", nargs="?", const=DEFAULT_DOC, type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(render_markdown())
        return 0
    if args.update_docs is not None:
        changed = update_docs(args.update_docs)
        print(f"{args.update_docs}: {'updated' if changed else 'already up to date'}")
        return 0
    stale = generated_part(args.check_docs.read_text(encoding="utf-8")) != render_markdown()
    if stale:
        print(f"{args.check_docs}: stale; run python -m tradingapp.protocol --update-docs", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
