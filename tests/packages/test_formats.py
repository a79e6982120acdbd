"""Each package format holding a real kernel (Debian's cloud 6.12 from
../shared/kernels), built by the real tools (package_builders.py): the
kernel noteforge reads out of the package in memory is byte for byte the one
packed, its configuration is found beside it, and `check`, `notes`, `verify`
work on the package as on the image."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from package_builders import build_arch, build_deb, build_rpm

from noteforge.cli.app import main
from noteforge.errors import UsageError
from noteforge.image.open import open_image
from noteforge.packages.find import config_of, find_kernels, open_one

REPO = Path(__file__).resolve().parents[2]
K612_CLOUD = REPO.parent / "shared" / "kernels" / "vmlinuz-6.12.107+deb12-cloud-amd64"
BOARD = REPO / "samples" / "asus-wrx80e-sage-threadripper-pro-xen.xen"
pytestmark = pytest.mark.skipif(not K612_CLOUD.is_file(), reason="../shared not present")

# The options of Debian's cloud-amd64 configuration that explain this kernel's notes.
CLOUD_CONFIG = """CONFIG_XEN_PVH=y
# CONFIG_XEN_DOM0 is not set
CONFIG_PHYSICAL_START=0x1000000
CONFIG_RELOCATABLE=y
CONFIG_RANDOMIZE_BASE=y
CONFIG_PHYSICAL_ALIGN=0x200000
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def kernel_sha() -> str:
    return sha(K612_CLOUD.read_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("payload", ["w3.zstdio", "w2.xzdio", "w9.gzdio"])
def test_rpm(tmp_path, payload, kernel_sha, capsys):
    config = tmp_path / "config"
    config.write_text(CLOUD_CONFIG)
    rpm = build_rpm(tmp_path, K612_CLOUD, config, payload=payload)
    listed = subprocess.run(["rpm", "-qlp", str(rpm)], capture_output=True, text=True,
                            check=True).stdout.split()
    assert listed == ["/lib/modules/6.12.107-cloud/config", "/lib/modules/6.12.107-cloud/vmlinuz"]
    [kernel] = find_kernels(str(rpm))
    assert (kernel.package_format, kernel.member) == ("rpm", "lib/modules/6.12.107-cloud/vmlinuz")
    assert sha(kernel.data) == kernel_sha
    assert kernel.config_name == f"{rpm}:lib/modules/6.12.107-cloud/config"
    assert config_of(kernel).get("CONFIG_XEN_DOM0") == "n"
    assert main(["check", str(rpm), "--require", "no-dom0"]) == 0
    assert capsys.readouterr().out == f"PASS  {rpm}:lib/modules/6.12.107-cloud/vmlinuz\n"


@pytest.mark.slow
def test_arch_as_makepkg_writes_it(tmp_path, kernel_sha, capsys):
    pkg = build_arch(tmp_path, K612_CLOUD)
    assert pkg.read_bytes()[:4] == bytes.fromhex("28b52ffd")  # a zstd frame
    first = subprocess.run(["tar", "--zstd", "-tf", str(pkg)], capture_output=True, text=True,
                           check=True).stdout.split()[0]
    assert first == ".PKGINFO"
    [kernel] = find_kernels(str(pkg))
    assert (kernel.package_format, kernel.member) == (
        "tar", "usr/lib/modules/6.12.107-arch1-1/vmlinuz")
    assert sha(kernel.data) == kernel_sha
    assert kernel.config_name is None  # Arch ships none: its kernels carry IKCONFIG
    assert main(["check", str(pkg), "--require", "pvh,reloc"]) == 0
    assert capsys.readouterr().out == f"PASS  {pkg}:usr/lib/modules/6.12.107-arch1-1/vmlinuz\n"


def test_arch_xz(tmp_path, kernel_sha):
    pkg = build_arch(tmp_path, K612_CLOUD, compress=("xz", "-c", "-0", "-T1", "-"),
                     suffix=".xz")
    [kernel] = find_kernels(str(pkg))
    assert sha(kernel.data) == kernel_sha


def test_arch_in_concatenated_zstd_frames(tmp_path, kernel_sha):
    """A package compressed in pieces (pzstd, or frames written one after the
    other) is one stream to the zstd tool: read across frames. (A kernel's own
    zstd payload stays one frame, as Xen's unzstd.c reads it.)"""
    import zstandard

    plain = build_arch(tmp_path, K612_CLOUD, compress=("cat",), suffix="")
    data = plain.read_bytes()
    half = len(data) // 2
    pkg = tmp_path / "linux-6.12.107-arch1-1-x86_64.pkg.tar.zst"
    pkg.write_bytes(b"".join(zstandard.ZstdCompressor(level=3).compress(part)
                             for part in (data[:half], data[half:])))
    tool = subprocess.run(["zstd", "-dc", str(pkg)], capture_output=True, check=True).stdout
    assert tool == data  # the real tool reads both frames
    [kernel] = find_kernels(str(pkg))
    assert sha(kernel.data) == kernel_sha


@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd", "none"])
def test_deb(tmp_path, compression, kernel_sha):
    kernel_bytes = K612_CLOUD.read_bytes()
    deb = build_deb(tmp_path, {"boot/vmlinuz-6.12.107-cloud": kernel_bytes,
                               "boot/config-6.12.107-cloud": CLOUD_CONFIG.encode(),
                               "usr/share/doc/linux-image-test/README": b"x"},
                    compression=compression)
    [kernel] = find_kernels(str(deb))
    assert (kernel.package_format, kernel.member) == ("deb", "boot/vmlinuz-6.12.107-cloud")
    assert sha(kernel.data) == kernel_sha
    assert config_of(kernel).number("CONFIG_PHYSICAL_ALIGN") == 0x200000


def test_one_image_commands_take_a_package(tmp_path, capsys):
    """notes and verify take a package holding one kernel as that kernel; with
    several, --kernel chooses (by file name, member path or modules folder)."""
    data = K612_CLOUD.read_bytes()
    one = build_deb(tmp_path / "a", {"boot/vmlinuz-6.12-cloud": data})
    image = open_one(str(one))
    assert image.path == f"{one}:boot/vmlinuz-6.12-cloud"
    assert image.effective.to_dict() == open_image(K612_CLOUD).effective.to_dict()
    two = build_deb(tmp_path / "b", {"boot/vmlinuz-6.12-a": data, "boot/vmlinuz-6.12-b": data})
    with pytest.raises(UsageError, match=r"holds 2 kernels \(vmlinuz-6.12-a, vmlinuz-6.12-b\): "
                       "choose one with --kernel NAME"):
        open_one(str(two))
    assert open_one(str(two), "vmlinuz-6.12-b").path == f"{two}:boot/vmlinuz-6.12-b"
    assert main(["notes", str(two), "--kernel", "boot/vmlinuz-6.12-a", "--json"]) == 0
    out = capsys.readouterr().out
    assert f'"path": "{two}:boot/vmlinuz-6.12-a"' in out
    assert main(["verify", str(one), "--e820", str(BOARD), "--dom0-mem", "8G",
                 "--xen-version", "4.19"]) == 0
    assert "loads at" in capsys.readouterr().out
    assert main(["notes", str(two)]) == 2
    assert "choose one with --kernel NAME" in capsys.readouterr().err


def test_compare_and_matrix_take_every_kernel_of_a_package(tmp_path, capsys):
    data = K612_CLOUD.read_bytes()
    deb = build_deb(tmp_path, {"boot/vmlinuz-6.12-a": data, "boot/vmlinuz-6.12-b": data})
    assert main(["matrix", "--images", str(deb), "--maps", str(BOARD), "--dom0-mem", "8G",
                 "--xen-version", "4.19", "--out", str(tmp_path / "rows.csv")]) == 0
    rows = (tmp_path / "rows.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("image,")
    assert [r.split(",")[0] for r in rows[1:]] == [f"{deb}:boot/vmlinuz-6.12-a",
                                                   f"{deb}:boot/vmlinuz-6.12-b"]
    out = capsys.readouterr().out
    assert "vmlinuz-6.12-a" in out and "vmlinuz-6.12-b" in out
    assert main(["compare", str(deb), "--json"]) == 0
    images = [i["path"] for i in __import__("json").loads(capsys.readouterr().out)["images"]]
    assert images == [f"{deb}:boot/vmlinuz-6.12-a", f"{deb}:boot/vmlinuz-6.12-b"]


def test_arch_kernel_with_an_embedded_config(tmp_path, capsys):
    """Arch builds with CONFIG_IKCONFIG and ships no config file: check reads
    the configuration out of the image (IKCFG_ST, gzip'd .config, IKCFG_ED;
    appended past the ELF's end here, as Debian builds without IKCONFIG)."""
    import gzip

    from noteforge.write.apply import set_note

    vmlinux = tmp_path / "vmlinux"
    set_note(K612_CLOUD, 17, "0x8801", output=vmlinux)  # dom0-capable, as Arch's kernel
    config = CLOUD_CONFIG.replace("# CONFIG_XEN_DOM0 is not set", "CONFIG_XEN_DOM0=y")
    with open(vmlinux, "ab") as f:
        f.write(b"IKCFG_ST" + gzip.compress(config.encode()) + b"IKCFG_ED")
    pkg = build_arch(tmp_path, vmlinux, compress=("zstd", "-c", "-3", "-"))
    assert main(["check", str(pkg), "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    member = "usr/lib/modules/6.12.107-arch1-1/vmlinuz"
    assert lines[:3] == [f"PASS  {pkg}:{member}",
                         f"      config: {pkg}:{member} [IKCONFIG]",
                         "      PHYS32_ENTRY        0x1000a30     CONFIG_XEN_PVH=y"]
    assert "      XENFEAT_dom0        yes (0x8801)  CONFIG_XEN_DOM0=y" in lines


def test_check_a_directory_of_images_and_packages(tmp_path, capsys, monkeypatch):
    """A directory: its images (with the config beside each) and its packages;
    config-*, System.map-* and initrd.img-* are not taken for kernels."""
    monkeypatch.setenv("COLUMNS", "1000")  # a wide terminal: each verdict one line
    boot = tmp_path / "boot"
    boot.mkdir()
    data = K612_CLOUD.read_bytes()
    (boot / "vmlinuz-6.12-cloud").write_bytes(data)
    (boot / "config-6.12-cloud").write_text(CLOUD_CONFIG)
    (boot / "System.map-6.12-cloud").write_text("ffffffff81000000 T _text\n")
    (boot / "initrd.img-6.12-cloud").write_bytes(b"\x1f\x8b" + b"\0" * 64)
    deb = build_deb(tmp_path, {"boot/vmlinuz-6.12-b": data})
    deb.rename(boot / deb.name)
    assert main(["check", str(boot), "--require", "no-dom0", "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    verdicts = [line for line in lines if not line.startswith(" ")]
    assert verdicts == [
        f"PASS  {boot / deb.name}:boot/vmlinuz-6.12-b (config not checked: no configuration "
        "found (none beside the image or in the package, no CONFIG_IKCONFIG))",
        f"PASS  {boot / 'vmlinuz-6.12-cloud'}",
    ]
    assert f"      config: {boot / 'config-6.12-cloud'}" in lines
