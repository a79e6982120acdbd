"""The --svg picture: text laid out by measuring it (title and subtitle whole,
wrapped; one label row per mark), checked in the SVG itself and in a real
browser: Chromium renders it headless and nothing may reach the right margin.
CI installs chromium (.ci/run); without it locally, the browser test skips."""

import html
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from noteforge.cli.app import main
from noteforge.render.svg import ADVANCE, LEFT, WIDTH, wrap

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
WRX80 = SAMPLES / "asus-wrx80e-sage-threadripper-pro-xen.xen"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TEXT = re.compile(r'<text x="([\d.]+)" y="([\d.]+)" font-size="(\d+)"([^>]*)>([^<]*)</text>')


def make_svg(tmp_path: Path, sample: str, *extra: str) -> str:
    out = tmp_path / "map.svg"
    main(["verify", str(SAMPLES / sample), "--e820", str(WRX80), "--svg", str(out), *extra])
    return out.read_text()


def texts(svg: str) -> list[tuple[float, float, int, str, str]]:
    return [(float(x), float(y), int(size), attrs, html.unescape(body))
            for x, y, size, attrs, body in TEXT.findall(svg)]


def test_wrap_cuts_paths_after_a_slash_and_keeps_every_character():
    text = "/work/samples/synthetic-linux-6.1-amd64.elf on /work/samples/asus-wrx80e.xen, as"
    lines = wrap(text, 10, 25 * 10 * ADVANCE)  # 25 characters a line
    assert lines == ["/work/samples/", "synthetic-linux-6.1-amd64", ".elf on /work/samples/",
                     "asus-wrx80e.xen, as"]
    assert all(len(line) <= 25 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_title_and_subtitle_whole_and_every_text_inside(tmp_path, capsys):
    svg = make_svg(tmp_path, "synthetic-linux-6.1-amd64.elf", "--dom0-mem", "8G")
    capsys.readouterr()
    items = texts(svg)
    bold15 = [t for t in items if t[2] == 15]
    title = " ".join(t[4] for t in bold15)
    assert title == ("does not load: not-relocatable (d0 kernel: Address conflict and not "
                     "relocatable); ACPI NVS [0x4000000, 0x4020fff] blocks [0x1000000, "
                     "0x49fffff]")
    assert len(bold15) == 2  # wrapped, not clipped
    subtitle = " ".join(t[4] for t in items if t[2] == 12)
    assert str(SAMPLES / "synthetic-linux-6.1-amd64.elf").replace("/", "") in \
        subtitle.replace(" ", "").replace("/", "")
    for x, _y, size, attrs, body in items:
        width = len(body) * size * 0.602  # DejaVu Sans Mono's advance
        right = x if 'text-anchor="end"' in attrs else x + width
        assert x >= LEFT - 0.1 and right <= WIDTH - LEFT + 0.1, body
    # Each mark on its own row: no two labels share a baseline in a panel.
    labels = [(y, body) for _x, y, size, _a, body in items if size == 11
              and body.split(" ")[0].rstrip(":") in ("requested", "blocking")]
    assert len({y for y, _ in labels}) == len(labels) == 4  # two panels, two marks each


def _png_pixels(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and the unfiltered rows of an 8-bit
    non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for r in range(height):
        f = raw[r * (stride + 1)]
        line = bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (CI installs it)")
def test_chromium_renders_it_within_the_margins(tmp_path, capsys):
    svg = make_svg(tmp_path, "synthetic-linux-6.12-amd64.elf")
    capsys.readouterr()
    height = int(re.search(r'height="(\d+)"', svg).group(1))
    png = tmp_path / "map.png"
    profile = tmp_path / "profile"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", f"--screenshot={png}",
                    f"--window-size={WIDTH},{height}", str(tmp_path / "map.svg")],
                   capture_output=True, timeout=120, check=True)
    width, h, bpp, rows = _png_pixels(png.read_bytes())
    assert (width, h) == (WIDTH, height)
    background = bytes.fromhex("fafafa")
    # Nothing but background in the right margin (bars end at WIDTH - LEFT,
    # text is laid out inside): a clipped title or label would show here.
    margin = range(WIDTH - LEFT + 3, WIDTH)
    for r, row in enumerate(rows):
        for x in margin:
            assert row[x * bpp:x * bpp + 3] == background, (x, r)
    # And the picture is drawn: the usable-RAM green fills the first bar.
    green = bytes.fromhex("4caf50")
    assert any(row[(WIDTH // 2) * bpp:(WIDTH // 2) * bpp + 3] == green for row in rows)
