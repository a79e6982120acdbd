"""`noteforge check` through the console entry point: the lines, the exit
statuses, --require, --e820 with --xen-version, --json, --markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noteforge.cli.app import main

REPO = Path(__file__).resolve().parents[2]
K612_CLOUD = REPO.parent / "shared" / "kernels" / "vmlinuz-6.12.107+deb12-cloud-amd64"
BOARD = REPO / "samples" / "asus-wrx80e-sage-threadripper-pro-xen.xen"
needs_shared = pytest.mark.skipif(not K612_CLOUD.is_file(), reason="../shared not present")


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["check", *args])
    out, err = capsys.readouterr()
    return rc, out, err


@needs_shared
def test_fail_line_and_status(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # a wide terminal: each verdict one line
    rc, out, _ = run(capsys, str(K612_CLOUD))
    assert rc == 1
    assert out.splitlines() == [
        f"FAIL  {K612_CLOUD}: dom0: SUPPORTED_FEATURES 0x8001 lacks XENFEAT_dom0 (bit 11): "
        "Xen 4.20.4+, 4.21.2+, 4.22 refuse it as dom0"]


@needs_shared
def test_dropping_a_requirement_passes(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # a wide terminal: each verdict one line
    rc, out, _ = run(capsys, str(K612_CLOUD), "--require", "no-dom0")
    assert rc == 0
    assert out.splitlines() == [
        f"PASS  {K612_CLOUD} (config not checked: no configuration found (none beside the "
        "image or in the package, no CONFIG_IKCONFIG))"]


@needs_shared
def test_loads_under_each_xen_version(capsys, monkeypatch):
    """One line per failing combination: the cloud kernel lacks XENFEAT_dom0, so
    the releases that run the check (4.20.4, 4.22.0) refuse it; 4.19.6 loads it."""
    monkeypatch.setenv("COLUMNS", "1000")  # a wide terminal: each verdict one line
    rc, out, _ = run(capsys, str(K612_CLOUD), "--require", "loads", "--e820", str(BOARD),
                     "--xen-version", "4.19,4.20.4", "--xen-version", "4.22", "--dom0-mem", "8G")
    assert rc == 1
    assert out.splitlines() == [
        f"FAIL  {K612_CLOUD}: loads: does not load in 2 of 9 combination(s) of machine and "
        "Xen release (one line each below)",
        f"      does not load on {BOARD} under Xen 4.20.4: not-dom0-capable (Kernel does not "
        "support Dom0 operation)",
        f"      does not load on {BOARD} under Xen 4.22.0: not-dom0-capable (Kernel does not "
        "support Dom0 operation)",
    ]
    rc, out, _ = run(capsys, str(K612_CLOUD), "--require", "loads", "--e820", str(BOARD),
                     "--xen-version", "4.20.3", "--dom0-mem", "8G")
    assert (rc, out.split()[0]) == (0, "PASS")


@needs_shared
def test_at_80_columns_the_reasons_go_under_the_verdict(capsys):
    """In a pipe (80 columns) a verdict too long for one line keeps PASS/FAIL
    and the name on its first line (grep ^FAIL finds it) and puts each reason
    below, indented and wrapped; the words are those of the one-line form."""
    rc, out, _ = run(capsys, str(K612_CLOUD), "--require", "dom0,loads", "--e820", str(BOARD),
                     "--xen-version", "4.22", "--dom0-mem", "8G")
    assert rc == 1
    lines = out.splitlines()
    assert lines[0] == f"FAIL  {K612_CLOUD}"
    assert all(line.startswith("      ") for line in lines[1:])
    assert all(len(line) <= 80 for line in lines[1:]
               if str(BOARD) not in line)  # a path is never cut
    assert " ".join(" ".join(lines[1:]).split()) == (
        "dom0: SUPPORTED_FEATURES 0x8001 lacks XENFEAT_dom0 (bit 11): Xen 4.20.4+, 4.21.2+, "
        "4.22 refuse it as dom0 loads: does not load in 1 of 1 combination(s) of machine and "
        f"Xen release (one line each below) does not load on {BOARD} under Xen 4.22.0: "
        "not-dom0-capable (Kernel does not support Dom0 operation)")


@needs_shared
def test_bad_input_is_status_2_and_the_rest_is_checked(capsys, tmp_path):
    junk = tmp_path / "junk.deb"
    junk.write_bytes(b"!<arch>\nnot really")
    rc, out, err = run(capsys, str(junk), str(K612_CLOUD), "--require", "pvh")
    assert rc == 2
    lines = out.splitlines()
    assert lines[0].startswith(f"ERROR {junk}: ")
    assert lines[1] == f"PASS  {K612_CLOUD}"
    assert err.count("\n") == 1 and err.startswith("noteforge: error: ")
    assert "Traceback" not in err


def test_usage_errors(capsys):
    rc, _, err = run(capsys, "x", "--require", "bogus")
    assert rc == 2 and "unknown requirement" in err
    rc, _, err = run(capsys, "x", "--require", "loads")
    assert rc == 2 and "--e820" in err
    rc, _, err = run(capsys, "x", "--xen-version", "four")
    assert rc == 2 and "expected a Xen release" in err


@needs_shared
def test_json_and_markdown(capsys):
    rc, out, _ = run(capsys, str(K612_CLOUD), "--json")
    data = json.loads(out)
    assert rc == 1 and data["passed"] is False and data["errors"] == []
    [kernel] = data["kernels"]
    assert kernel["notes"]["phys32_reloc"] == {"align": 0x200000, "min": 0x1000000,
                                               "max": 0x3FFFFFFF}
    assert [r["status"] for r in kernel["requirements"]] == ["pass", "fail", "pass", "skip"]
    rc, out, _ = run(capsys, str(K612_CLOUD), "--markdown")
    lines = out.splitlines()
    assert lines[2] == ("| `vmlinuz-6.12.107+deb12-cloud-amd64` | FAIL (dom0) | 0x200000, "
                        "0x1000000, 0x3fffffff | no (0x8001) | ? | ? | ? | ? | ? | ? |")
