"""Bad and hostile packages: each is one line on stderr naming the package
(and the member or offset), exit status 2, no traceback, and memory bounded
by the caps of noteforge.packages.limits (lowered here so the tests stay
small; the code paths are the ones the real caps take)."""

from __future__ import annotations

import io
import lzma
import subprocess
import tarfile
from pathlib import Path

import pytest
from package_builders import build_deb, need

from noteforge.cli.app import main
from noteforge.packages import limits

REPO = Path(__file__).resolve().parents[2]
K612_CLOUD = REPO.parent / "shared" / "kernels" / "vmlinuz-6.12.107+deb12-cloud-amd64"


def refused(capsys, *args: str) -> str:
    rc = main(["check", *args])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("noteforge: error: "), err
    assert "Traceback" not in err
    return err.strip()[len("noteforge: error: "):]


def ar(tmp: Path, name: str, members: dict[str, bytes]) -> Path:
    """An ar archive made by binutils' ar, members in the order given."""
    need("ar")
    for member, data in members.items():
        (tmp / member).write_bytes(data)
    out = tmp / name
    subprocess.run(["ar", "rc", str(out), *members], cwd=tmp, check=True)
    return out


def tar_bytes(files: dict[str, bytes], pax: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if pax:
                info.pax_headers = pax
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_ar_archive_that_is_not_a_debian_package(tmp_path, capsys):
    deb = ar(tmp_path, "x.deb", {"hello.txt": b"hi\n"})
    assert refused(capsys, str(deb)) == (
        f"{deb}: an ar archive but not a Debian package (first member 'hello.txt', "
        "expected 'debian-binary')")


def test_truncated_deb(tmp_path, capsys):
    deb = build_deb(tmp_path, {"boot/vmlinuz-1": b"\0" * 200_000}, compression="gzip")
    cut = tmp_path / "cut.deb"
    cut.write_bytes(deb.read_bytes()[:-50_000])
    message = refused(capsys, str(cut))
    assert message.startswith(f"{cut}")
    assert "truncated" in message or "not a readable ar archive" in message


def test_data_tar_that_lies_about_its_compression(tmp_path, capsys):
    import gzip

    deb = ar(tmp_path, "lie.deb", {"debian-binary": b"2.0\n",
                                   "data.tar.xz": gzip.compress(tar_bytes({"a": b"a"}))})
    message = refused(capsys, str(deb))
    # gzip's header carries a time stamp: the message shows 8 bytes, compared to 3.
    assert message.startswith(f"{deb}: member data.tar.xz at offset 0x84 does not start as "
                              "xz (starts with 1f8b08")


def test_decompression_bomb_in_data_tar(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(limits, "MAX_PAYLOAD", 1 << 20)
    bomb = lzma.compress(tar_bytes({"usr/share/zeros": b"\0" * (4 << 20)}))
    assert len(bomb) < 5000
    deb = ar(tmp_path, "bomb.deb", {"debian-binary": b"2.0\n", "data.tar.xz": bomb})
    message = refused(capsys, str(deb))
    assert message == (f"{deb}:data.tar.xz: decompresses to more than 1048576 bytes, the cap "
                       "for a package's payload; refusing a likely decompression bomb")


def test_kernel_member_over_its_cap(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(limits, "MAX_KERNEL", 1 << 20)
    deb = build_deb(tmp_path, {"boot/vmlinuz-big": b"\0" * (2 << 20)}, compression="xz")
    assert refused(capsys, str(deb)) == (
        f"{deb}: member boot/vmlinuz-big is 2097152 bytes, more than the limit of 1048576 "
        "for a kernel")


def test_pax_header_over_its_cap(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(limits, "MAX_METADATA", 64 << 10)
    pkg = tmp_path / "linux.pkg.tar.xz"
    pkg.write_bytes(lzma.compress(tar_bytes({".PKGINFO": b"pkgname = linux\n"},
                                            pax={"comment": "x" * (128 << 10)})))
    message = refused(capsys, str(pkg))
    assert message.startswith(f"{pkg}: the package's tar archive: a tar header record of ")
    assert message.endswith("bytes (more than 65536); corrupt or hostile archive")


def test_package_without_a_kernel(tmp_path, capsys):
    pkg = tmp_path / "linux-docs.pkg.tar.xz"
    pkg.write_bytes(lzma.compress(tar_bytes({".PKGINFO": b"pkgname = linux-docs\n",
                                             "usr/share/doc/linux/README": b"x"})))
    assert refused(capsys, str(pkg)) == (
        f"{pkg}: a tar package holding no kernel (looked for boot/vmlinuz-*, "
        "lib/modules/*/vmlinuz, usr/lib/modules/*/vmlinuz)")


def test_kernel_member_that_is_not_a_kernel(tmp_path, capsys):
    deb = build_deb(tmp_path, {"boot/vmlinuz-junk": b"this is no kernel\n" * 10})
    assert refused(capsys, str(deb)) == (
        f"{deb}:boot/vmlinuz-junk at offset 0x0: not an ELF, a bzImage or a compressed ELF "
        "(starts with 7468697320697320)")


def test_rpm_lead_followed_by_garbage(tmp_path, capsys):
    rpm = tmp_path / "kernel-core.rpm"
    rpm.write_bytes(bytes.fromhex("edabeedb") + b"\x03\x00" + b"\xff" * 200)
    message = refused(capsys, str(rpm))
    assert message.startswith(f"{rpm}: not a readable RPM package (")


@pytest.mark.slow
@pytest.mark.skipif(not K612_CLOUD.is_file(), reason="../shared not present")
def test_truncated_rpm(tmp_path, capsys):
    from package_builders import build_rpm

    rpm = build_rpm(tmp_path, K612_CLOUD, None, payload="w9.gzdio")
    cut = tmp_path / "cut.rpm"
    cut.write_bytes(rpm.read_bytes()[: rpm.stat().st_size // 2])
    message = refused(capsys, str(cut))
    assert message.startswith(f"{cut}")
    assert "truncated" in message
