"""The matrix as a page a person opens in a browser: one self-contained HTML
file (inline CSS, no scripts, no external assets) with the summary and a heat
map of images x maps per (dom0 size, policy).

Pure: a Summary in, a string out; the CLI writes it."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence

from noteforge import __version__
from noteforge.fleet.rows import BAD_INPUT, IN_PLACE, RELOCATED
from noteforge.fleet.summary import Summary

# Cell classes: one per outcome family, so a reason never needs its own colour.
CLASS_IN_PLACE = "in-place"
CLASS_RELOCATED = "relocated"
CLASS_FAIL = "fail"
CLASS_BAD = "bad-input"

_GLYPH = {CLASS_IN_PLACE: "✓", CLASS_RELOCATED: "↻", CLASS_FAIL: "✗", CLASS_BAD: "?"}

# Each failure reason its own letter and colour, so two reasons never look the
# same in the heat map (the hover text is not the only channel); the legend
# lists the reasons present.
REASON_MARKS = {
    "not-relocatable": ("R", "#ffcdd2", "#b71c1c"),
    "no-load-address": ("A", "#f8bbd0", "#880e4f"),
    "no-metadata-space": ("M", "#ffe0b2", "#bf360c"),
    "no-phys32-entry": ("E", "#d1c4e9", "#4527a0"),
    "entry-out-of-bounds": ("B", "#c5cae9", "#1a237e"),
    "not-pvh": ("P", "#cfd8dc", "#263238"),
    "not-dom0-capable": ("D", "#b2dfdb", "#004d40"),
    "dom0-alloc-failed": ("F", "#ffccbc", "#3e2723"),
}
OTHER_REASON = ("X", "#ffcdd2", "#b71c1c")


def reason_mark(reason: str) -> tuple[str, str, str]:
    return REASON_MARKS.get(reason, OTHER_REASON)


def _reason_css() -> str:
    return "\n".join(
        f"table.heat td.fail.r-{name} {{ background: {bg}; color: {fg}; }}\n"
        f".legend .l-r-{name}::before {{ background: {bg}; border: 1px solid {fg}; "
        f"content: \"{letter}\"; color: {fg}; font-size: 10px; text-align: center; "
        "line-height: 12px; font-weight: 700; }"
        for name, (letter, bg, fg) in REASON_MARKS.items())

_CSS = """
:root { --ok:#2e7d32; --okbg:#c8e6c9; --rel:#8a6d00; --relbg:#ffe9a8; --bad:#b71c1c;
  --badbg:#ffcdd2; --inbg:#e0e0e0; --ink:#1f2328; --mute:#59636e; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--ink); margin: 24px 32px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: var(--mute); margin: 0 0 16px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 12.5px; }
.totals { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0 4px; }
.total { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 130px; }
.total b { display: block; font-size: 22px; }
.total span { color: var(--mute); font-size: 12px; }
table { border-collapse: collapse; }
table.summary th, table.summary td { border-bottom: 1px solid var(--line); padding: 5px 10px;
  text-align: left; vertical-align: middle; }
table.summary td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th { background: #f6f8fa; font-weight: 600; }
table.summary td.zero { color: var(--mute); }
table.summary td.in-place { background: var(--okbg); color: var(--ok); }
table.summary td.relocated { background: var(--relbg); color: var(--rel); }
table.summary td.fail { background: var(--badbg); color: var(--bad); font-weight: 600; }
.bar { display: flex; width: 180px; height: 12px; border-radius: 3px; overflow: hidden;
  background: var(--inbg); }
.bar i { display: block; height: 100%; }
.bar .b-ok { background: var(--ok); } .bar .b-rel { background: #e0a800; }
.bar .b-fail { background: var(--bad); } .bar .b-bad { background: #9e9e9e; }
.reasons { color: var(--bad); }
table.heat { margin-top: 6px; }
table.heat th { font-weight: 600; font-size: 12px; padding: 4px 6px; background: #f6f8fa;
  border: 1px solid #fff; }
table.heat thead th { vertical-align: bottom; max-width: 150px; overflow-wrap: anywhere; }
table.heat th.map { text-align: left; max-width: 360px; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; font-weight: 500; }
table.heat td { border: 1px solid #fff; padding: 3px 6px; font-size: 12px; white-space: nowrap;
  text-align: center; min-width: 22px; }
table.heat.compact td { padding: 1px 3px; }
table.heat td.in-place { background: var(--okbg); color: var(--ok); }
table.heat td.relocated { background: var(--relbg); color: var(--rel); }
table.heat td.fail { background: var(--badbg); color: var(--bad); font-weight: 600; }
table.heat td.bad-input { background: var(--inbg); color: var(--mute); }
.legend { display: flex; gap: 16px; margin: 6px 0; color: var(--mute); font-size: 12px; }
.legend span::before { content: ""; display: inline-block; width: 12px; height: 12px;
  border-radius: 2px; margin-right: 5px; vertical-align: -2px; }
.legend .l-ok::before { background: var(--okbg); border: 1px solid var(--ok); }
.legend .l-rel::before { background: var(--relbg); border: 1px solid #e0a800; }
.legend .l-fail::before { background: var(--badbg); border: 1px solid var(--bad); }
.legend .l-bad::before { background: var(--inbg); border: 1px solid #9e9e9e; }
ul.fails { margin: 4px 0; padding-left: 20px; }
ul.fails li { margin: 2px 0; }
.note { color: var(--mute); font-size: 12px; }
"""


def cell_class(outcome: str) -> str:
    if outcome == IN_PLACE:
        return CLASS_IN_PLACE
    if outcome == RELOCATED:
        return CLASS_RELOCATED
    if outcome == BAD_INPUT:
        return CLASS_BAD
    return CLASS_FAIL


def short_names(paths: Sequence[str]) -> list[str]:
    """Base names when they are unique, else the paths as given. A kernel read
    out of a package (PACKAGE:MEMBER) goes by its file name (vmlinuz-VERSION) or
    its modules folder (VERSION, for .../modules/VERSION/vmlinuz)."""
    from noteforge.packages.layout import is_kernel, short_name

    def base(p: str) -> str:
        member = p.rsplit(":", 1)[-1]
        if ":" in p and is_kernel(member):
            return short_name(member)
        return os.path.basename(p.rstrip("/")) or p

    bases = [base(p) for p in paths]
    return bases if len(set(bases)) == len(bases) else list(paths)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_html(summary: Summary, *, title: str = "noteforge matrix",
                generated: str | None = None) -> str:
    """The whole page as one string."""
    s = summary
    images = short_names(s.images)
    when = generated or time.strftime("%Y-%m-%d %H:%M")
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
    w(f"<title>{_e(title)}</title><style>{_CSS}{_reason_css()}</style></head><body>")
    w(f"<h1>{_e(title)}</h1>")
    w(f"<p class=\"meta\">{len(s.images)} images × {s.maps} maps × {len(s.variants)} "
      f"(dom0 size, policy) = {s.rows} placements · noteforge {_e(__version__)} · {_e(when)}</p>")
    releases = s.release_text()
    if releases:  # the release the verdicts model, and where it came from
        w(f"<p class=\"meta\" id=\"xen-release\">Verdicts {_e(releases)}</p>")

    # -- totals
    loads = sum(c.in_place + c.relocated for c in s.counts.values())
    relocated = sum(c.relocated for c in s.counts.values())
    w("<div class=\"totals\">")
    for ident, value, label in (
        ("rows", s.rows, "placements"),
        ("loads", loads, "load"),
        ("relocated", relocated, "of them relocated"),
        ("fails", s.rows - loads, "do not load"),
        # As the terminal summary: a non-PVH image and an unreadable map are
        # reported apart, not as maps where placement fails.
        ("maps-failing", s.maps_failing_placement, f"of {s.maps} maps fail an image"),
        ("bad-inputs", s.bad_input_count, "bad inputs"),
    ):
        w(f"<div class=\"total\" id=\"total-{ident}\"><b>{value:,}</b><span>{_e(label)}"
          "</span></div>")
    w("</div>")

    # -- per image
    w("<h2>Per image</h2>")
    w("<table class=\"summary\" id=\"per-image\"><thead><tr><th>image</th>")
    if len(s.variants) > 1:
        w("<th>dom0_mem</th><th>policy</th>")
    w("<th>maps</th><th>in place</th><th>relocated</th><th>fail</th><th></th>"
      "<th>failures by reason</th></tr></thead><tbody>")
    for (i, v), c in s.counts.items():
        dom0_mem, policy = s.variants[v]
        failures = c.failures()
        w(f"<tr data-image=\"{_e(s.images[i])}\" data-policy=\"{_e(policy)}\" "
          f"data-dom0-mem=\"{_e(dom0_mem or '')}\">"
          f"<td title=\"{_e(s.images[i])}\"><code>{_e(images[i])}</code></td>")
        if len(s.variants) > 1:
            w(f"<td>{_e(dom0_mem or 'default')}</td><td>{_e(policy)}</td>")
        bad = failures.get(BAD_INPUT, 0)
        bar = _bar(c.in_place, c.relocated, c.failed - bad, bad, c.maps)
        w(f"<td class=\"num\">{c.maps}</td>{_num(c.in_place, 'in-place')}"
          f"{_num(c.relocated, 'relocated')}{_num(c.failed, 'fail')}<td>{bar}</td>"
          f"<td class=\"reasons\">"
          + ", ".join(f"{_e(k)} {n}" for k, n in failures.items()) + "</td></tr>")
    w("</tbody></table>")

    # -- heat maps
    w("<h2>Heat map</h2>")
    w("<div class=\"legend\"><span class=\"l-ok\">✓ loads in place</span>"
      "<span class=\"l-rel\">↻ relocated by Xen</span>"
      "<span class=\"l-bad\">? bad input</span></div>")
    present = sorted({c[0] for v in range(len(s.variants)) for _m, cells in s.heat[v]
                      for c in cells if c is not None and cell_class(c[0]) == CLASS_FAIL})
    if present:
        w("<div class=\"legend\" id=\"reasons\">does not load:" + "".join(
            f"<span class=\"l-r-{_e(r)}\">✗{reason_mark(r)[0]} {_e(r)}</span>"
            for r in present) + "</div>")
    compact = len(s.images) > 8
    for v in range(len(s.variants)):
        if len(s.variants) > 1:
            w(f"<h3>{_e(s.variant_label(v))}</h3>")
        cls = "heat compact" if compact else "heat"
        w(f"<table class=\"{cls}\" data-variant=\"{v}\"><thead><tr><th>map</th>")
        for i, name in enumerate(images):
            w(f"<th title=\"{_e(s.images[i])}\">{_breakable(name)}</th>")
        w("</tr></thead><tbody>")
        for map_path, cells in s.heat[v]:
            w(f"<tr><th class=\"map\" title=\"{_e(map_path)}\">"
              f"{_e(os.path.basename(map_path) or map_path)}</th>")
            for i, cell in enumerate(cells):
                if cell is None:
                    w("<td></td>")
                    continue
                oc, text = cell
                klass = cell_class(oc)
                label = _GLYPH[klass] if compact else _cell_label(oc, text)
                if klass == CLASS_FAIL:
                    letter = reason_mark(oc)[0]
                    label = f"✗{letter}" if compact else f"✗{letter} {oc}"
                    klass = f"{klass} r-{oc}"
                w(f"<td class=\"cell {klass}\" data-image=\"{_e(s.images[i])}\" "
                  f"data-map=\"{_e(map_path)}\" data-outcome=\"{_e(oc)}\" "
                  f"title=\"{_e(images[i])} on {_e(map_path)}: {_e(text)}\">{_e(label)}</td>")
            w("</tr>")
        w("</tbody></table>")
    if s.heat_truncated:
        w(f"<p class=\"note\">The heat map shows the first {s.heat_max_maps} maps; "
          f"{s.heat_truncated} more are counted in the tables.</p>")

    # -- per map
    w("<h2>Maps where an image fails or is moved</h2>")
    multi = len(s.variants) > 1
    if not s.per_map:
        w("<p id=\"per-map\">Every image loads in place on every map.</p>")
    else:
        w("<table class=\"summary\" id=\"per-map\"><thead><tr><th>map</th>"
          "<th>does not load</th><th>relocated by Xen</th></tr></thead><tbody>")
        for m, (fails, moves) in s.per_map.items():
            bad = []
            if s.all_bad(fails):
                bad.append("every image: <span class=\"reasons\">bad-input</span> "
                           "(the map could not be used)")
                fails = []
            for i, v, oc in fails:
                where = f" ({_e(s.variant_label(v))})" if multi else ""
                bad.append(f"<code>{_e(images[i])}</code>: "
                           f"<span class=\"reasons\">{_e(oc)}</span>{where}")
            moved = []
            for i, v, base in moves:
                where = f" ({_e(s.variant_label(v))})" if multi else ""
                moved.append(f"<code>{_e(images[i])}</code> → <code>{base:#x}</code>{where}")
            w(f"<tr data-map=\"{_e(m)}\"><td title=\"{_e(m)}\"><code>"
              f"{_e(os.path.basename(m) or m)}</code></td>"
              f"<td>{_list(bad)}</td><td>{_list(moved)}</td></tr>")
        w("</tbody></table>")
        if s.per_map_truncated:
            w(f"<p class=\"note\">…and {s.per_map_truncated} more maps with a failure or a "
              "relocation (see the patterns and the rows).</p>")

    if s.maps_failing > len(s.map_failures) and s.patterns:
        w("<h2>Failure patterns</h2><p class=\"note\">Maps grouped by exactly what fails on "
          "them.</p><table class=\"summary\" id=\"patterns\"><thead><tr>"
          "<th>maps</th><th>what fails</th><th>examples</th></tr></thead><tbody>")
        for sig, (count, ex) in sorted(s.patterns.items(), key=lambda kv: -kv[1][0]):
            what = "; ".join(f"{images[i]}: {oc}" for i, _v, oc in sig)
            w(f"<tr><td class=\"num\">{count}</td><td>{_e(what)}</td><td>"
              + ", ".join(f"<code>{_e(os.path.basename(m))}</code>" for m in ex) + "</td></tr>")
        w("</tbody></table>")
        if s.other_patterns:
            w(f"<p class=\"note\">{s.other_patterns} more maps fall in patterns not kept.</p>")

    if s.not_dom0_capable:
        w("<h2>Not dom0-capable</h2><p id=\"not-dom0\">SUPPORTED_FEATURES note without "
          "XENFEAT_dom0 (bit 11): Xen 4.22 and Debian's 4.20.4 refuse these before placing "
          "them (<code>--xen-version</code> applies it): "
          + ", ".join(f"<code>{_e(images[i])}</code>" for i in sorted(s.not_dom0_capable))
          + ".</p>")

    if s.warning_counts:
        w("<h2>Warnings</h2><table class=\"summary\" id=\"warnings\"><thead><tr>"
          "<th>rows</th><th>warning</th></tr></thead><tbody>")
        for kind, n in s.warning_counts.most_common():
            w(f"<tr><td class=\"num\">{n}</td><td>{_e(kind)}</td></tr>")
        w("</tbody></table>")

    if s.not_pvh:
        w("<h2>Not PVH kernels</h2><p id=\"not-pvh\">No Xen ELF note (reason "
          "<code>not-pvh</code> on every map; not counted as failing above): "
          + ", ".join(f"<code>{_e(images[i])}</code>" for i in sorted(s.not_pvh)) + ".</p>")

    if s.bad_maps:
        w(f"<h2>Maps that could not be read</h2><p class=\"note\">{s.bad_map_count} (reason "
          "<code>bad-input</code> for every image; not counted as failing above)</p>"
          "<ul class=\"fails\" id=\"bad-maps\">")
        for m, msg in s.bad_maps:
            w(f"<li><code>{_e(m)}</code>: {_e(msg)}</li>")
        w("</ul>")

    if s.bad_inputs:
        w("<h2>Bad inputs</h2><ul class=\"fails\" id=\"bad-inputs\">")
        for msg in s.bad_inputs:
            w(f"<li><code>{_e(msg)}</code></li>")
        w("</ul>")
    for note in s.notes:
        w(f"<p class=\"note\">{_e(note)}</p>")
    w("</body></html>\n")
    return "".join(out)


def _num(n: int, cls: str) -> str:
    """A count cell, coloured only when it is not zero."""
    return f"<td class=\"num {cls}\">{n}</td>" if n else f"<td class=\"num zero\">{n}</td>"


def _breakable(name: str) -> str:
    """A file name that may wrap after - . + _ (not in the middle of a word)."""
    out = _e(name)
    for sep in ("-", ".", "_", "+"):
        out = out.replace(sep, sep + "<wbr>")
    return out


def _list(items: list[str]) -> str:
    if not items:
        return ""
    return "<ul class=\"fails\">" + "".join(f"<li>{x}</li>" for x in items) + "</ul>"


def _bar(ok: int, rel: int, fail: int, bad: int, total: int) -> str:
    if total <= 0:
        return ""
    parts = []
    for cls, n in (("b-ok", ok), ("b-rel", rel), ("b-fail", fail), ("b-bad", bad)):
        if n:
            parts.append(f"<i class=\"{cls}\" style=\"width:{100 * n / total:.2f}%\"></i>")
    return "<div class=\"bar\">" + "".join(parts) + "</div>"


def _cell_label(oc: str, text: str) -> str:
    """A few characters inside a cell: the address it loads at, or the reason."""
    if oc in (IN_PLACE, RELOCATED):
        # describe() writes "... at 0x..." / "relocated to 0x..."
        addr = next((t for t in text.split() if t.startswith("0x")), "")
        return ("✓ " if oc == IN_PLACE else "↻ ") + addr
    if oc == BAD_INPUT:
        return "? bad input"
    return "✗ " + oc
