"""Boot Debian's Xen 4.20 under QEMU for every scenario and check what it did.

Each scenario's serial log is read with noteforge.maps.xenlog, and the outcome,
reason, kernel range and dom0 page count must be exactly what Xen printed
when the table (tests/realxen/scenarios.py) was recorded.

Runs when scripts/fetch-debian has filled its cache (CI does that first); skips
otherwise, except in CI (CI set), where missing packages fail the suite.
"""

from __future__ import annotations

import os

import pytest

from noteforge.image.open import open_image
from noteforge.logcheck import compare_with_log
from noteforge.maps.read import parse_map_text
from noteforge.maps.xenlog import parse_log
from noteforge.verify import verify

from . import harness
from .scenarios import CRASHES, SCENARIOS

pytestmark = [pytest.mark.xen, pytest.mark.slow]

ALL = SCENARIOS + CRASHES
PAGE = 4096


@pytest.fixture(scope="session")
def xen_workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("xenboots")


@pytest.fixture(scope="session")
def xen_boots(request, xen_workdir):
    """Boot every selected scenario once, two at a time; name -> BootResult."""
    try:
        harness.packages()
    except harness.HarnessUnavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"real-Xen suite cannot run in CI: {e}")
        pytest.skip(str(e))
    wanted = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "case" in callspec.params:
            wanted.add(callspec.params["case"][0].name)
    return harness.boot_many([s for s, _ in ALL if s.name in wanted], xen_workdir)


@pytest.mark.parametrize("case", ALL, ids=[s.name for s, _ in ALL])
def test_xen_did_what_the_table_says(case, xen_boots):
    scenario, xen = case
    boot = xen_boots[scenario.name]
    assert boot.error is None, boot.error
    assert boot.stopped_early, (
        f"{scenario.name}: no placement/failure line before the timeout; log tail:\n"
        + "\n".join(boot.log.splitlines()[-15:])
    )
    log = parse_log(boot.log, source=scenario.name)

    assert log.version_tuple == (4, 20)
    assert log.dom0_mem == scenario.dom0_mem
    assert log.dom0_verbose is scenario.verbose
    assert log.outcome == xen.outcome
    assert log.reason == xen.reason
    assert log.kernel_range == xen.kernel
    if xen.dom0_pages is not None:
        assert log.dom0_nr_pages() == xen.dom0_pages
        if scenario.dom0_mem is not None and scenario.dom0_mem.endswith(("M", "K")):
            # an explicit dom0_mem is met page for page
            unit = 1 << 20 if scenario.dom0_mem.endswith("M") else 1 << 10
            assert xen.dom0_pages == int(scenario.dom0_mem[:-1]) * unit // PAGE


@pytest.mark.parametrize(
    "name", ["base-512M", "hole32", "linux61", "reloc-align4M-hole32", "low66-min0"]
)
def test_verbose_boot_prints_the_kernel_range_and_its_reloc_words(name, xen_boots):
    if name not in xen_boots:
        pytest.skip("scenario not selected")
    scenario = next(s for s, _ in ALL if s.name == name)
    log = parse_log(xen_boots[name].log, source=name)
    if scenario.kernel in ("6.1", "6.1-bz"):
        assert log.elf_memory == (0x1000000, 0x4A00000)
        assert log.phys32_reloc is None
        return
    assert log.elf_memory == (0x1000000, 0x4200000)
    words = {"6.12": (0x200000, 0x1000000, 0x3FFFFFFF)}
    words["reloc:400000:-:-"] = (0x400000, 0x1000000, 0x3FFFFFFF)
    words["reloc:-:0:-"] = (0x200000, 0, 0x3FFFFFFF)
    r = log.phys32_reloc
    assert (r.align, r.min, r.max) == words[scenario.kernel]
    if log.outcome == "relocated":
        assert log.moved_from == log.elf_memory
        size = log.elf_memory[1] - log.elf_memory[0]
        assert log.moved_to[1] - log.moved_to[0] == size


@pytest.mark.parametrize("case", SCENARIOS, ids=[s.name for s, _ in SCENARIOS])
def test_noteforge_predicts_what_xen_did(case, xen_boots, xen_workdir):
    """The point of the suite: `noteforge verify` on the same kernel file, with
    the serial log as the map (Xen's own host map, its dom0_mem and, with
    dom0=pvh,verbose, its Dom0 memory map), gives Xen's verdict, reason and
    range. CRASHES (Xen faulting before it reaches placement) are left out:
    no memory map can predict those."""
    scenario, xen = case
    boot = xen_boots[scenario.name]
    assert boot.error is None, boot.error
    kernel = open_image(harness.kernel_file(scenario.kernel, xen_workdir))
    host = parse_map_text(boot.log, source=scenario.name)
    verdict = verify(kernel, host, cmdline=harness.DOM0_ARGS)
    p = verdict.placement

    assert verdict.loads is (xen.outcome != "failed"), verdict.to_dict()["warnings"]
    assert verdict.reason == xen.reason
    if xen.kernel is not None:
        assert (p.base, p.base + p.size) == xen.kernel
        assert p.relocated is (xen.outcome == "relocated")
    if xen.dom0_pages is not None:
        assert verdict.dom0.nr_pages == xen.dom0_pages
    # And the user-facing check reads the same log to the same conclusion.
    assert compare_with_log(verdict, parse_log(boot.log, scenario.name)).status != "disagree"


DEFAULT_SIZE = [(s, x) for s, x in SCENARIOS if s.dom0_mem is None and x.dom0_pages]


@pytest.mark.parametrize("case", DEFAULT_SIZE, ids=[s.name for s, _ in DEFAULT_SIZE])
def test_default_dom0_size_estimate_brackets_xen(case, xen_boots, xen_workdir):
    """Issue 10: with no dom0_mem, noteforge can only estimate the size Xen
    gives dom0 from the host map. On each guest size, Xen's real page count
    (from its verbose Dom0 memory map) must lie inside the stated plausible
    range, and the central estimate within 1 MiB of it."""
    from noteforge.xen.dom0_mem import XenEstimate, compute_nr_pages
    from noteforge.xen.e820 import clean_map

    scenario, xen = case
    boot = xen_boots[scenario.name]
    host = parse_map_text(boot.log, source=scenario.name)
    kernel = harness.kernel_file(scenario.kernel, xen_workdir)
    size = compute_nr_pages(None, clean_map(host).entries,
                            estimate=XenEstimate(boot_modules=kernel.stat().st_size))
    assert size.low <= xen.dom0_pages <= size.high
    assert abs(size.nr_pages - xen.dom0_pages) <= 256
