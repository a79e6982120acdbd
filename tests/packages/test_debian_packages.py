"""Debian's linux-image packages as they ship (scripts/fetch-debian
--packages: bookworm, trixie, sid; generic, cloud, rt): every kernel noteforge
reads out of a package in memory is byte for byte what dpkg-deb unpacks, its
configuration is the one dpkg-deb unpacks beside it, and `check` gives the
survey in README.md."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from package_builders import need

from noteforge.check import check_kernel
from noteforge.packages.find import config_of, open_found, scan_target, with_configs_from

CACHE = Path(os.environ.get("NOTEFORGE_CACHE", Path.home() / ".cache" / "noteforge"))
RELEASES = ("bookworm", "trixie", "sid")
FLAVOURS = ("generic", "cloud", "rt")

pytestmark = [pytest.mark.debian, pytest.mark.slow]


@pytest.fixture(scope="module")
def packages() -> dict[str, str]:
    try:
        paths = json.loads((CACHE / "manifest.json").read_text())["packages"]["paths"]
    except (OSError, KeyError, ValueError):
        paths = {}
    if not all(f"{r}-{f}" in paths for r in RELEASES for f in FLAVOURS):
        if os.environ.get("CI"):
            pytest.fail("Debian kernel packages not fetched (scripts/fetch-debian --packages)")
        pytest.skip("Debian kernel packages not fetched (scripts/fetch-debian --packages)")
    return paths


def dpkg_members(deb: str, names: set[str]) -> dict[str, bytes]:
    """The members dpkg-deb itself unpacks (its --fsys-tarfile, read by tarfile)."""
    need("dpkg-deb")
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    out = {}
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for info in tar:
            name = info.name.removeprefix("./")
            if name in names and info.isreg():
                out[name] = tar.extractfile(info).read()
    proc.stdout.close()
    assert proc.wait() == 0
    return out


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_debian_package(packages, release, flavour):
    key = f"{release}-{flavour}"
    targets = [packages[key]] + ([packages[key + "-base"]] if key + "-base" in packages else [])
    scans = [scan_target(t) for t in targets]
    configs = {m: c for s in scans for m, c in s.configs.items()}
    [kernel] = with_configs_from([k for s in scans for k in s.kernels], configs)
    assert kernel.package == packages[key]
    # The kernel and its config, as dpkg-deb unpacks them.
    config_member = kernel.config_name.rsplit(":", 1)[1]
    unpacked = dpkg_members(packages[key], {kernel.member})
    for t in targets:
        unpacked.update(dpkg_members(t, {config_member}))
    assert kernel.data == unpacked[kernel.member]
    config_text = unpacked[config_member].decode()
    assert kernel.config_text == config_text

    result = check_kernel(open_found(kernel), config_of(kernel))
    status = {r.name: r.status for r in result.requirements}
    facts = {f.note: f for f in result.facts}

    def setting(option: str) -> str:
        m = re.search(rf"^{option}=(\S+)$", config_text, re.M)
        return m.group(1) if m else "n"

    # Each fact's configuration value is the config's own line.
    for f in result.facts:
        assert f.setting == setting(f.config), f
    # The kernel's notes as the configuration explains them (Linux's head.S).
    assert facts["PHYS32_ENTRY"].value is not None and setting("CONFIG_XEN_PVH") == "y"
    assert status["pvh"] == "pass"
    dom0_config = setting("CONFIG_XEN_DOM0") == "y"
    assert dom0_config == (flavour != "cloud")
    if release == "bookworm":
        # 6.1: no PHYS32_RELOC (Linux 6.12 added it); XENFEAT_dom0 declared
        # in every flavour, with or without CONFIG_XEN_DOM0.
        assert facts["PHYS32_RELOC align"].value is None
        assert status["reloc"] == "fail"
        assert status["dom0"] == "pass"
        assert status["config"] == ("fail" if flavour == "cloud" else "pass")
    else:
        assert (facts["PHYS32_RELOC align"].value, facts["PHYS32_RELOC min"].value) == (
            hex(int(setting("CONFIG_PHYSICAL_ALIGN"), 0)),
            hex(int(setting("CONFIG_PHYSICAL_START"), 0)))
        want_max = (1 << 30 if setting("CONFIG_RANDOMIZE_BASE") == "y" else 512 << 20) - 1
        assert facts["PHYS32_RELOC max"].value == hex(want_max)
        assert status == {"pvh": "pass", "dom0": "pass" if dom0_config else "fail",
                          "reloc": "pass", "config": "pass"}


def test_same_kernel_same_verdict_in_every_format(packages, tmp_path):
    """Debian's trixie cloud kernel and its real config, repackaged by rpmbuild
    (as kernel-core) and as makepkg packs (config beside it, as SUSE does): check
    gives the same requirements and facts as on the .deb."""
    from package_builders import build_arch, build_rpm

    deb = packages["trixie-cloud"]
    [kernel] = scan_target(deb).kernels
    version = kernel.member.removeprefix("boot/vmlinuz-")
    image, config = tmp_path / "vmlinuz", tmp_path / "config"
    image.write_bytes(kernel.data)
    config.write_text(kernel.config_text)
    rpm = build_rpm(tmp_path / "rpm", image, config, kver=version)
    arch = build_arch(tmp_path / "arch", image, kver=version,
                      compress=("zstd", "-c", "-T0", "-3", "-"),
                      extra={f"usr/lib/modules/{version}/config": config.read_bytes()})

    def verdict(target: str):
        [k] = scan_target(target).kernels
        cfg = config_of(k)
        r = check_kernel(open_found(k), cfg)
        # config's pass reason names the file it read: the one part that differs.
        assert r.requirements[-1].reasons == (f"the notes agree with {cfg.source}",)
        return ([(q.name, q.status, q.reasons) for q in r.requirements[:-1]],
                r.requirements[-1].status, [f.to_dict() for f in r.facts])

    want = verdict(deb)
    assert [q[1] for q in want[0]] + [want[1]] == ["pass", "fail", "pass", "pass"]
    assert verdict(str(rpm)) == want
    assert verdict(str(arch)) == want
