"""noteforge.check on real kernels: Debian's cloud 6.12 from ../shared/kernels
(PVH, PHYS32_RELOC, no XENFEAT_dom0), Debian's generic 6.12 and 6.1 with
their configs (scripts/fetch-debian --kernels), and copies of them edited with
noteforge's own writer for every failing case."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from noteforge.check import check_kernel, parse_requirements
from noteforge.errors import UsageError
from noteforge.image.open import open_image
from noteforge.packages.config import parse_config
from noteforge.packages.find import config_of, find_kernels
from noteforge.write.apply import remove_note, set_note, set_reloc

SHARED = Path(__file__).resolve().parents[2] / "shared" / "kernels"
K612_CLOUD = SHARED / "vmlinuz-6.12.107+deb12-cloud-amd64"
needs_shared = pytest.mark.skipif(not K612_CLOUD.is_file(), reason="../shared not present")
CACHE = Path(os.environ.get("NOTEFORGE_CACHE", Path.home() / ".cache" / "noteforge"))

PHYS32_ENTRY, SUPPORTED_FEATURES, PHYS32_RELOC = 18, 17, 19


def _generic(key: str) -> tuple[Path, Path]:
    """The generic kernel and its config that scripts/fetch-debian --kernels fetched."""
    try:
        paths = json.loads((CACHE / "manifest.json").read_text())["kernels"]["paths"]
        kernel, config = Path(paths[key]), Path(paths[key + "-config"])
    except (OSError, KeyError, ValueError):
        kernel = config = CACHE / "missing"
    if not (kernel.is_file() and config.is_file()):
        if os.environ.get("CI"):
            pytest.fail(f"{key} not fetched (scripts/fetch-debian --kernels)")
        pytest.skip(f"{key} not fetched (scripts/fetch-debian --kernels)")
    return kernel, config


def _status(result) -> dict[str, str]:
    return {r.name: r.status for r in result.requirements}


def _reasons(result, name: str) -> list[str]:
    return list(next(r.reasons for r in result.requirements if r.name == name))


@pytest.fixture(scope="module")
def cloud_vmlinux(tmp_path_factory) -> Path:
    """The cloud kernel as an ELF with the same notes (the writer's output form)."""
    out = tmp_path_factory.mktemp("cloud") / "vmlinux"
    set_note(K612_CLOUD, SUPPORTED_FEATURES, "0x8001", output=out)
    return out


# --- requirements on the real images, as shipped ---------------------------


@needs_shared
def test_cloud_kernel_fails_only_dom0():
    result = check_kernel(open_image(K612_CLOUD), None)
    assert _status(result) == {"pvh": "pass", "dom0": "fail", "reloc": "pass", "config": "skip"}
    assert _reasons(result, "dom0") == [
        "SUPPORTED_FEATURES 0x8001 lacks XENFEAT_dom0 (bit 11): Xen 4.20.4+, 4.21.2+, "
        "4.22 refuse it as dom0"]
    assert _reasons(result, "pvh") == ["PHYS32_ENTRY 0x1000a30 inside [0x1000000, 0x4200000)"]
    assert _reasons(result, "reloc") == ["align 0x200000 (2 MiB), min 0x1000000, max 0x3fffffff"]
    assert not result.passed


@pytest.mark.debian
def test_generic_612_passes_everything_with_its_config():
    kernel, config = _generic("linux-6.12")
    cfg = parse_config(config.read_text(), str(config))
    result = check_kernel(open_image(kernel), cfg)
    assert _status(result) == {"pvh": "pass", "dom0": "pass", "reloc": "pass", "config": "pass"}
    facts = {f.note: (f.value, f.config, f.setting) for f in result.facts}
    assert facts["PHYS32_RELOC align"] == ("0x200000", "CONFIG_PHYSICAL_ALIGN", "0x200000")
    assert facts["PHYS32_RELOC min"] == ("0x1000000", "CONFIG_PHYSICAL_START", "0x1000000")
    assert facts["PHYS32_RELOC max"] == ("0x3fffffff", "CONFIG_RANDOMIZE_BASE", "y")
    assert facts["XENFEAT_dom0"] == ("yes (0x8801)", "CONFIG_XEN_DOM0", "y")


@pytest.mark.debian
def test_generic_61_is_not_relocatable():
    kernel, config = _generic("linux-6.1")
    cfg = parse_config(config.read_text(), str(config))
    result = check_kernel(open_image(kernel), cfg)
    assert _status(result) == {"pvh": "pass", "dom0": "pass", "reloc": "fail", "config": "pass"}
    assert _reasons(result, "reloc") == [
        "no PHYS32_RELOC note: Xen loads it only at its link address 0x1000000"]


# --- each requirement failing, on copies edited with noteforge's writer -------


@needs_shared
def test_dom0_passes_once_the_feature_is_set(tmp_path):
    out = tmp_path / "vmlinux"
    set_note(K612_CLOUD, SUPPORTED_FEATURES, "0x8801", output=out)
    result = check_kernel(open_image(out), None, requirements=("dom0",))
    assert _reasons(result, "dom0") == ["SUPPORTED_FEATURES 0x8801 has XENFEAT_dom0"]
    assert result.passed


@needs_shared
def test_pvh_fails_without_entry(cloud_vmlinux, tmp_path):
    out = tmp_path / "noentry"
    remove_note(cloud_vmlinux, PHYS32_ENTRY, output=out, force=True)
    result = check_kernel(open_image(out), None, requirements=("pvh",))
    assert _reasons(result, "pvh") == ["no PHYS32_ENTRY note: not a PVH kernel"]
    assert not result.passed


@needs_shared
def test_pvh_fails_with_entry_outside_the_image(cloud_vmlinux, tmp_path):
    out = tmp_path / "farentry"
    # 0x4200000 is pend, the first byte past the loaded image; Xen's own check
    # (entry <= kend) lets it through, the requirement does not.
    set_note(cloud_vmlinux, PHYS32_ENTRY, "0x4200000", output=out, force=True)
    result = check_kernel(open_image(out), None, requirements=("pvh",))
    assert _reasons(result, "pvh") == [
        "PHYS32_ENTRY 0x4200000 is outside the loaded image [0x1000000, 0x4200000)"]


@needs_shared
def test_reloc_fails_without_the_note(cloud_vmlinux, tmp_path):
    out = tmp_path / "noreloc"
    remove_note(cloud_vmlinux, PHYS32_RELOC, output=out)
    result = check_kernel(open_image(out), None, requirements=("reloc",))
    assert _reasons(result, "reloc") == [
        "no PHYS32_RELOC note: Xen loads it only at its link address 0x1000000"]


@needs_shared
def test_reloc_words_that_are_not_sane(cloud_vmlinux, tmp_path):
    out = tmp_path / "badreloc"
    # Not 2 MiB aligned: the writer refuses that for Linux unless forced.
    set_reloc(cloud_vmlinux, align=0x300000, min_addr=0x2000000, max_addr=0x1fffffff,
              output=out, force=True)
    result = check_kernel(open_image(out), None, requirements=("reloc",))
    assert _reasons(result, "reloc") == [
        "align 0x300000 is not a power of two",
        "min 0x2000000 is not the link address 0x1000000",
        "the image [0x1000000, 0x41fffff] is not inside [min 0x2000000, max 0x1fffffff]",
    ]


@needs_shared
def test_reloc_max_is_what_the_configuration_allows(cloud_vmlinux, tmp_path):
    out = tmp_path / "max512"
    set_reloc(cloud_vmlinux, align=0x200000, min_addr=0x1000000, max_addr=0x1fffffff,
              output=out)
    image = open_image(out)
    # Without a configuration both KERNEL_IMAGE_SIZE - 1 values are sane.
    assert check_kernel(image, None, requirements=("reloc",)).passed
    kaslr = parse_config("CONFIG_RANDOMIZE_BASE=y\n", "cfg")
    result = check_kernel(image, kaslr, requirements=("reloc",))
    assert _reasons(result, "reloc") == [
        "max 0x1fffffff is not 0x3fffffff (CONFIG_RANDOMIZE_BASE=y)"]
    plain = parse_config("# CONFIG_RANDOMIZE_BASE is not set\n", "cfg")
    assert check_kernel(image, plain, requirements=("reloc",)).passed


@needs_shared
def test_reloc_align_must_match_the_bzimage_header():
    image = open_image(K612_CLOUD)
    assert image.bzimage.kernel_alignment == 0x200000
    # The writer cannot produce a bzImage (it writes an ELF), so this one case
    # edits the parsed header: a bzImage asking for 4 MiB alignment.
    header = dataclasses.replace(image.bzimage, kernel_alignment=0x400000)
    result = check_kernel(dataclasses.replace(image, bzimage=header), None,
                          requirements=("reloc",))
    assert _reasons(result, "reloc") == [
        "align 0x200000 differs from the bzImage header's kernel_alignment 0x400000"]


@pytest.mark.debian
def test_config_disagreements_are_named(tmp_path):
    kernel, config = _generic("linux-6.12")
    text = config.read_text()
    image = open_image(kernel)
    edited = (text.replace("CONFIG_PHYSICAL_ALIGN=0x200000", "CONFIG_PHYSICAL_ALIGN=0x1000000")
              .replace("CONFIG_XEN_DOM0=y", "# CONFIG_XEN_DOM0 is not set"))
    result = check_kernel(image, parse_config(edited, "edited"), requirements=("config",))
    assert _reasons(result, "config") == [
        "XENFEAT_dom0 declared but CONFIG_XEN_DOM0 is not set (Xen would accept as dom0 a "
        "kernel without dom0 support)",
        "PHYS32_RELOC align 0x200000 but CONFIG_PHYSICAL_ALIGN=0x1000000",
        "bzImage kernel_alignment 0x200000 but CONFIG_PHYSICAL_ALIGN=0x1000000",
    ]
    # The real configuration, and the kernel's notes after the writer removed
    # PHYS32_ENTRY: CONFIG_XEN_PVH=y no longer matches.
    out = tmp_path / "vmlinux"
    remove_note(kernel, PHYS32_ENTRY, output=out, force=True)
    result = check_kernel(open_image(out), parse_config(text, "real"), requirements=("config",))
    assert _reasons(result, "config") == ["CONFIG_XEN_PVH=y but no PHYS32_ENTRY note"]


@needs_shared
def test_config_is_skipped_unless_required():
    image = open_image(K612_CLOUD)
    assert _status(check_kernel(image, None, requirements=("config",))) == {"config": "skip"}
    result = check_kernel(image, None, requirements=("config",), explicit=frozenset({"config"}))
    assert _status(result) == {"config": "fail"}


@needs_shared
def test_config_beside_the_image_and_embedded(tmp_path, cloud_vmlinux):
    """A config-VERSION beside vmlinuz-VERSION is found; without one, the
    IKCFG_ST..IKCFG_ED blob CONFIG_IKCONFIG leaves in the ELF is read. (The
    blob is appended past the ELF's last byte here: Debian builds without
    IKCONFIG, and the reader, like scripts/extract-ikconfig, only looks for
    the markers.)"""
    import gzip

    text = "CONFIG_XEN_PVH=y\n# CONFIG_XEN_DOM0 is not set\nCONFIG_RANDOMIZE_BASE=y\n"
    folder = tmp_path / "boot"
    folder.mkdir()
    shutil.copy(K612_CLOUD, folder / "vmlinuz-6.12-cloud")
    (folder / "config-6.12-cloud").write_text(text)
    [found] = find_kernels(str(folder / "vmlinuz-6.12-cloud"))
    cfg = config_of(found)
    assert (cfg.source, cfg.get("CONFIG_XEN_DOM0")) == (str(folder / "config-6.12-cloud"), "n")

    embedded = tmp_path / "vmlinux"
    data = cloud_vmlinux.read_bytes() + b"IKCFG_ST" + gzip.compress(text.encode()) + b"IKCFG_ED"
    embedded.write_bytes(data)
    [found] = find_kernels(str(embedded))
    cfg = config_of(found)
    assert cfg.source == f"{embedded} [IKCONFIG]"
    result = check_kernel(open_image(embedded), cfg)
    assert _status(result) == {"pvh": "pass", "dom0": "fail", "reloc": "pass", "config": "pass"}


def test_require_syntax():
    assert parse_requirements(None, False) == (("pvh", "dom0", "reloc", "config"), frozenset())
    assert parse_requirements(None, True)[0] == ("pvh", "dom0", "reloc", "config", "loads")
    assert parse_requirements(["no-dom0"], False)[0] == ("pvh", "reloc", "config")
    assert parse_requirements(["reloc,pvh"], False) == (("pvh", "reloc"),
                                                        frozenset({"reloc", "pvh"}))
    with pytest.raises(UsageError, match="unknown requirement"):
        parse_requirements(["pvhh"], False)
    with pytest.raises(UsageError, match="--e820"):
        parse_requirements(["loads"], False)


def test_embedded_config_markers_without_an_end(tmp_path):
    from noteforge.errors import ImageError
    from noteforge.image.ikconfig import embedded_config

    elf = tmp_path / "vmlinux"
    elf.write_bytes(b"\x7fELF" + b"\0" * 60 + b"IKCFG_ST" + b"\x1f\x8b" + b"\0" * 100)
    with pytest.raises(ImageError, match=r"IKCFG_ST at ELF offset 0x40 has no IKCFG_ED after it"):
        embedded_config(elf)
    elf.write_bytes(b"\x7fELF" + b"\0" * 60 + b"IKCFG_ST" + b"not gzip" + b"IKCFG_ED")
    with pytest.raises(ImageError, match=r"embedded config at ELF offset 0x40 is not gzip"):
        embedded_config(elf)
    elf.write_bytes(b"\x7fELF" + b"\0" * 200)
    assert embedded_config(elf) is None
