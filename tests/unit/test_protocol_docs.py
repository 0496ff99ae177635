"""docs/protocol.md must agree with the schema it documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tradingapp.engine.reasons import Reason
from tradingapp.protocol import CLIENT_MESSAGES, SERVER_MESSAGES, encode_frame, parse_human
from tradingapp.protocol.__main__ import main
from tradingapp.protocol.markdown import generated_part, render_markdown, splice

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_generated_reference_is_up_to_date(doc: str) -> None:
    assert render_markdown() == generated_part(doc), "run: python -m tradingapp.protocol --update-docs"


def test_check_docs_command_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check-docs", str(DOC)]) == 0


def test_check_docs_command_detects_a_stale_file(tmp_path: Path, doc: str) -> None:
    stale = tmp_path / "protocol.md"
    stale.write_text(splice(doc, "old tables\n"), encoding="utf-8")

    assert main(["--check-docs", str(stale)]) == 1
    assert main(["--update-docs", str(stale)]) == 0
    assert main(["--check-docs", str(stale)]) == 0


def test_every_message_has_a_section(doc: str) -> None:
    for spec in (*CLIENT_MESSAGES, *SERVER_MESSAGES):
        fix = "none" if spec.fix == "-" else spec.fix
        assert f"#### `{spec.type}` (FIX {fix})" in doc


def test_every_reason_code_is_listed(doc: str) -> None:
    for reason in Reason:
        assert f"| `{reason.value}` |" in doc


def test_frame_hex_example_is_right(doc: str) -> None:
    shown = "00 00 00 10  81 a4 74 79 70 65 a9 68 65 61 72 74 62 65 61 74"

    assert shown in doc
    assert encode_frame({"type": "heartbeat"}).hex(" ") == " ".join(shown.split())


def test_human_form_table_rows_match_the_parser(doc: str) -> None:
    rows = re.findall(r"^\| `([^`|]+)` \| `(\{.*\})` \|$", doc, flags=re.MULTILINE)
    checked = 0
    for typed, sent in rows:
        try:
            expected = json.loads(sent)
        except ValueError:
            continue  # abbreviated rows ("...")
        assert expected == parse_human(typed, lambda: "h1"), typed
        checked += 1

    assert checked >= 10
