"""--xen-version on compare and explain: policy xen models the release given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noteforge.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
CLOUD = ROOT.parent / "shared" / "kernels" / "vmlinuz-6.12.107+deb12-cloud-amd64"
WRX80 = ROOT / "samples" / "asus-wrx80e-sage-threadripper-pro-xen.xen"
needs_shared = pytest.mark.skipif(not CLOUD.is_file(), reason="../shared not present")


def run(capsys, *args):
    rc = main([*args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


@needs_shared
def test_explain_models_the_release(capsys):
    # the cloud 6.12 lacks XENFEAT_dom0: 4.21.1 relocates it, the default 4.22.0 refuses it
    _, d = run(capsys, "explain", str(CLOUD), "--e820", str(WRX80), "--dom0-mem", "8G",
               "--xen-version", "4.21.1")
    xen = d["policies"]["xen"]
    assert xen["loads"] and xen["relocated"] and xen["base"] == 0x3CE00000
    assert d["policies"]["xen-4.18"]["reason"] == "not-relocatable"
    _, d = run(capsys, "explain", str(CLOUD), "--e820", str(WRX80), "--dom0-mem", "8G")
    assert d["policies"]["xen"]["reason"] == "not-dom0-capable"


@needs_shared
def test_compare_models_the_release(capsys):
    _, d = run(capsys, "compare", str(CLOUD), "--e820", str(WRX80), "--dom0-mem", "8G",
               "--xen-version", "4.20.3")
    assert d["images"][0]["policies"]["xen"]["loads"] is True
    _, d = run(capsys, "compare", str(CLOUD), "--e820", str(WRX80), "--dom0-mem", "8G",
               "--xen-version", "4.20.4")
    assert d["images"][0]["policies"]["xen"]["reason"] == "not-dom0-capable"


def test_bad_release_is_status_2(capsys):
    assert main(["explain", str(WRX80), "--xen-version", "bogus"]) == 2
    assert "--xen-version 'bogus'" in capsys.readouterr().err
