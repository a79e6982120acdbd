"""The matrix HTML page: its numbers and its heat-map cells come from the rows."""

from __future__ import annotations

from html.parser import HTMLParser

from noteforge.fleet.report import render_html, short_names
from noteforge.fleet.summary import Summary

NVS = {"start": 0x4000000, "end": 0x4021000, "type": 4, "type_name": "ACPI NVS"}
RSV = {"start": 0x1000000, "end": 0x49E6000, "type": 2, "type_name": "reserved"}


def row(image, map_, *, loads, relocated=False, reason=None, base=None, blocking=None,
        message=None, dom0_mem=None, policy="xen"):
    return {
        "image": image, "map": map_, "dom0_mem": dom0_mem, "policy": policy,
        # a map that cannot be read has no release (fleet.rows)
        "xen_release": None if "bad" in map_ else "4.22.0",
        "xen_release_source": None if "bad" in map_ else "default", "loads": loads,
        "reason": reason, "base": base, "entry": None if base is None else base + 0xA30,
        "relocated": relocated, "blocking": blocking, "dom0_pages": 1000,
        "dom0_capable": True, "warnings": [], "message": message,
    }


IMAGES = ["/k/vmlinuz-6.1", "/k/vmlinuz-6.12", "/k/broken<img>"]
MAPS = ["/m/wrx80.xen", "/m/tgl-rvp.dmesg", "/m/framework.dmesg", "/m/bad&map.txt"]


def sample_rows():
    rows = []
    for m in MAPS:
        for img in IMAGES:
            if "bad" in m:
                rows.append(row(img, m, loads=False, reason="bad-input",
                                message=f"{m} line 3: expected an e820 line"))
            elif "broken" in img:
                rows.append(row(img, m, loads=False, reason="bad-input",
                                message=f"{img} at offset 0x0: not an ELF or bzImage"))
            elif "framework" in m:
                rows.append(row(img, m, loads=True, base=0x1000000))
                rows[-1]["warnings"] = ["acpi-overlap: the kernel ends 0x0 bytes below ..."]
            elif img.endswith("6.1"):
                rows.append(row(img, m, loads=False, reason="not-relocatable",
                                blocking=NVS if "wrx80" in m else RSV))
            else:
                rows.append(row(img, m, loads=True, relocated=True, base=0x3CE00000,
                                blocking=NVS if "wrx80" in m else RSV))
    return rows


def build(rows, variants=((None, "xen"),), **kw):
    s = Summary(IMAGES, list(variants), **kw)
    for r in rows:
        s.add(r)
    return s.finish()


class Cells(HTMLParser):
    """Collects heat-map cells, elements by id, and the per-image table rows."""

    def __init__(self):
        super().__init__()
        self.cells = []
        self.ids = {}
        self._id = None
        self._tag = None
        self._depth = 0
        self._text = []
        self.scripts = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "cell" in (a.get("class") or "").split():
            self.cells.append(a)
        if self._id and tag == self._tag:
            self._depth += 1
        if "id" in a and not self._id:
            self._id, self._tag, self._depth = a["id"], tag, 1
            self._text = []
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(a[key])

    def handle_data(self, data):
        if self._id:
            self._text.append(data)

    def handle_endtag(self, tag):
        if self._id and tag == self._tag:
            self._depth -= 1
            if self._depth == 0:
                self.ids[self._id] = " ".join(" ".join(self._text).split())
                self._id = None


def parse(page):
    p = Cells()
    p.feed(page)
    return p


def test_one_cell_per_image_and_map_with_class_and_title():
    page = render_html(build(sample_rows()), generated="2024-01-01 00:00")
    p = parse(page)
    assert len(p.cells) == len(IMAGES) * len(MAPS)
    by_key = {(c["data-image"], c["data-map"]): c for c in p.cells}
    assert len(by_key) == 12
    c = by_key[("/k/vmlinuz-6.1", "/m/wrx80.xen")]
    # Each reason its own class (colour) and letter, listed in the legend.
    assert c["class"] == "cell fail r-not-relocatable"
    assert c["data-outcome"] == "not-relocatable"
    assert '<span class="l-r-not-relocatable">✗R not-relocatable</span>' in page
    assert c["title"] == ("vmlinuz-6.1 on /m/wrx80.xen: fails: not-relocatable "
                          "(ACPI NVS [0x4000000, 0x4020fff] blocks its address)")
    c = by_key[("/k/vmlinuz-6.12", "/m/tgl-rvp.dmesg")]
    assert c["class"] == "cell relocated"
    assert c["title"] == ("vmlinuz-6.12 on /m/tgl-rvp.dmesg: relocated to 0x3ce00000 "
                          "(reserved [0x1000000, 0x49e5fff] blocks its own address)")
    c = by_key[("/k/vmlinuz-6.12", "/m/framework.dmesg")]
    assert c["class"] == "cell in-place"
    assert c["title"].endswith("loads in place at 0x1000000")
    c = by_key[("/k/vmlinuz-6.1", "/m/bad&map.txt")]
    assert c["class"] == "cell bad-input"
    assert "line 3: expected an e820 line" in c["title"]
    classes = sorted(x["class"].split()[1] for x in p.cells)
    assert classes.count("in-place") == 2
    assert classes.count("relocated") == 2
    assert classes.count("fail") == 2
    assert classes.count("bad-input") == 6


def test_summary_numbers_on_the_page():
    s = build(sample_rows())
    page = render_html(s)
    p = parse(page)
    assert p.ids["total-rows"] == "12 placements"
    assert p.ids["total-loads"] == "4 load"
    assert p.ids["total-relocated"] == "2 of them relocated"
    assert p.ids["total-fails"] == "8 do not load"
    # the broken image fails on every readable map; the unreadable map is listed
    # apart, as the terminal summary does
    assert p.ids["total-maps-failing"] == "3 of 4 maps fail an image"
    assert s.to_dict()["xen_releases"] == [  # the unreadable map has none
        {"xen_release": "4.22.0", "xen_release_source": "default", "maps": 3}]
    assert p.ids["xen-release"] == ("Verdicts as Xen 4.22.0 does (default: the newest release "
                                    "modelled; --xen-version to choose)")
    assert "/m/bad&map.txt : /m/bad&map.txt line 3: expected an e820 line" in p.ids["bad-maps"]
    assert p.ids["total-bad-inputs"] == "2 bad inputs"
    # per image: vmlinuz-6.1: 4 maps, 1 in place, 0 relocated, 3 fail
    assert "vmlinuz-6.1 4 1 0 3 bad-input 1, not-relocatable 2" in p.ids["per-image"]
    assert "vmlinuz-6.12 4 1 2 1 bad-input 1" in p.ids["per-image"]
    # per map: the RVP lists the 6.1 image failing
    assert "tgl-rvp.dmesg vmlinuz-6.1 : not-relocatable broken<img> : bad-input" in p.ids[
        "per-map"]
    assert "framework.dmesg broken<img> : bad-input" in p.ids["per-map"]
    # the relocation column names the image and where Xen moves it
    assert "vmlinuz-6.12 → 0x3ce00000" in p.ids["per-map"]
    assert "bad&map.txt every image: bad-input (the map could not be used)" in p.ids["per-map"]
    assert "framework.dmesg vmlinuz-6.1" not in p.ids["per-map"]
    assert "line 3: expected an e820 line" in p.ids["bad-inputs"]
    assert p.ids["warnings"] == "rows warning 2 acpi-overlap"


def test_page_is_self_contained_and_escaped():
    page = render_html(build(sample_rows()))
    p = parse(page)
    assert p.scripts == 0
    assert p.external == []
    assert "broken&lt;img&gt;" in page
    assert "broken<img>" not in page
    assert "bad&amp;map.txt" in page


def test_several_variants_get_one_heat_map_each():
    rows = []
    variants = [("1G", "xen"), ("1G", "xen-4.18")]
    for m in MAPS[:2]:
        for dom0_mem, pol in variants:
            for img in IMAGES:
                ok = pol == "xen" and img.endswith("6.12")
                rows.append(row(img, m, loads=ok, relocated=ok, base=0x3CE00000 if ok else None,
                                reason=None if ok else "not-relocatable", dom0_mem=dom0_mem,
                                policy=pol))
    p = parse(render_html(build(rows, variants)))
    assert len(p.cells) == 2 * len(IMAGES) * 2
    assert sum(c["class"] == "cell relocated" for c in p.cells) == 2


def test_heat_map_is_capped_but_counts_are_not():
    rows = []
    for k in range(30):
        for img in IMAGES:
            rows.append(row(img, f"/m/gen-{k:03d}", loads=True, base=0x1000000))
    s = build(rows, heat_max_maps=10)
    p = parse(render_html(s))
    assert len(p.cells) == 10 * len(IMAGES)
    assert p.ids["total-rows"] == "90 placements"
    assert "20 more are counted" in render_html(s)


def test_short_names_fall_back_to_paths_on_collision():
    assert short_names(["/a/x", "/b/y"]) == ["x", "y"]
    assert short_names(["/a/x", "/b/x"]) == ["/a/x", "/b/x"]
