"""README's JSON field names are the ones the commands print: every key the
README documents for notes, verify, e820 and compare --json is a key of the
real output on the samples (issue 19: the README said `desc`, notes print
`raw`)."""

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from noteforge.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SAMPLES = ROOT / "samples"
WRX80 = str(SAMPLES / "asus-wrx80e-sage-threadripper-pro-xen.xen")
LINUX = str(SAMPLES / "synthetic-linux-6.12-amd64.bzImage")

# Values and placeholders the README quotes beside the keys.
NOT_KEYS = {"elf32", "elf64", "bzimage", "elf", "gz", "null", "xen", "DESIGN", "POLICY",
            "ImageFacts", "Outcome", "true", "agree", "note", "usable", "ACPI", "NVS"}


def keys(doc, out=None) -> set[str]:
    out = set() if out is None else out
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(k)
            keys(v, out)
    elif isinstance(doc, list):
        for v in doc:
            keys(v, out)
    return out


def documented(start: str, end: str, pattern: str) -> set[str]:
    i = README.index(start)
    span = README[i:README.index(end, i)]
    return {k for k in re.findall(pattern, span) if k not in NOT_KEYS}


def output(*args: str) -> dict:
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code in (0, 1), r.output
    return json.loads(r.output)


def test_notes_keys():
    doc = keys(output("notes", LINUX))
    said = documented("JSON keys: `format`", "`warnings`.", r"`([a-z_0-9]+)`")
    assert "raw" in said and "desc" not in said
    assert said - doc == set()


def test_verify_keys():
    doc = keys(output("verify", LINUX, "--e820", WRX80))
    said = documented('```json\n{"image"', "```\n", r'"([a-z_0-9]+)":')
    assert len(said) > 30
    # --against-log's keys need a whole Xen boot log (tests/test_logcheck.py).
    assert said - doc == {"against_log", "status", "rows", "notes"}


def test_compare_and_explain_keys():
    doc = keys(output("compare", LINUX, str(SAMPLES / "synthetic-freebsd-amd64.elf"),
                      "--e820", WRX80))
    doc |= keys(output("explain", LINUX, "--e820", WRX80))
    said = documented("`compare --json`:", "### matrix", r'"([a-z_0-9]+)"')
    assert len(said) > 40
    assert said - doc == set()


def test_e820_keys():
    doc = keys(output("e820", WRX80))
    said = documented('JSON: `{"source_format"', "\n\n", r'"([a-z_0-9]+)"')
    assert said - doc == set()
