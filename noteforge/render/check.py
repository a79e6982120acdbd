"""Rendering of `noteforge check`: one line per kernel (PASS or FAIL with
every reason), optionally each kernel's note values beside the
configuration behind them, or a Markdown survey table."""

from __future__ import annotations

from collections.abc import Sequence

from noteforge.check import KernelCheck
from noteforge.packages.layout import is_kernel, short_name


def verdict_line(result: KernelCheck) -> str:
    """The kernel's verdict as one record: PASS or FAIL, its name, every reason."""
    if result.passed:
        skipped = _skipped(result)
        return f"PASS  {result.name}" + (f" ({'; '.join(skipped)})" if skipped else "")
    return f"FAIL  {result.name}: " + "; ".join(result.failures)


def verdict_lines(result: KernelCheck, width: int | None = None) -> list[str]:
    """verdict_line when it fits in `width` columns; else the verdict and the
    name on the first line (so `grep ^FAIL` still finds every failing kernel)
    and each reason below it, indented and wrapped. A name is never cut."""
    line = verdict_line(result)
    if width is None or len(line) <= width:
        return [line]
    head = f"{'PASS' if result.passed else 'FAIL'}  {result.name}"
    reasons = [f"({r})" for r in _skipped(result)] if result.passed else list(result.failures)
    out = [head]
    for reason in reasons:
        out += _wrap(reason, width, first=_INDENT, rest=_INDENT + "  ")
    return out


def _skipped(result: KernelCheck) -> list[str]:
    return [f"{r.name} not checked: {'; '.join(r.reasons)}"
            for r in result.requirements if r.status == "skip"]


_INDENT = "      "


def _wrap(text: str, width: int | None, *, first: str, rest: str) -> list[str]:
    if width is None:
        return [first + text]
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [first.rstrip()]


def combination_lines(result: KernelCheck, width: int | None = None) -> list[str]:
    """One indented entry per failing combination of machine and Xen release,
    wrapped to `width` columns when given."""
    return [line for r in result.requirements if r.status == "fail" and r.summary
            for reason in r.reasons
            for line in _wrap(f"does not load on {reason}", width, first=_INDENT,
                              rest=_INDENT + "  ")]


def explain_lines(result: KernelCheck) -> list[str]:
    """The note values beside the settings that explain them, indented."""
    out = [f"      config: {result.config_source or 'not found'}"]
    width = max(len(f.note) for f in result.facts)
    vwidth = max(len(f.value or "absent") for f in result.facts)
    for f in result.facts:
        setting = "?" if f.setting is None else f.setting
        out.append(f"      {f.note:<{width}}  {f.value or 'absent':<{vwidth}}  "
                   f"{f.config}={setting}")
    return out


_SURVEY_COLUMNS = ("kernel", "check", "PHYS32_RELOC (align, min, max)", "XENFEAT_dom0",
                   "XEN_PVH", "XEN_DOM0", "PHYSICAL_ALIGN", "PHYSICAL_START", "RELOCATABLE",
                   "RANDOMIZE_BASE")


def survey_table(results: Sequence[KernelCheck]) -> list[str]:
    """A Markdown table, one row per kernel: what it carries and the
    configuration values behind it."""
    out = ["| " + " | ".join(_SURVEY_COLUMNS) + " |",
           "|" + "---|" * len(_SURVEY_COLUMNS)]
    for r in results:
        facts = {f.note: f for f in r.facts}
        reloc = r.notes.get("phys32_reloc")
        reloc_text = "none" if reloc is None else ", ".join(
            "-" if reloc[k] is None else f"{reloc[k]:#x}" for k in ("align", "min", "max"))
        dom0 = facts["XENFEAT_dom0"].value or "-"
        failed = [q.name for q in r.requirements if q.status == "fail"]
        verdict = "PASS" if r.passed else "FAIL (" + ", ".join(failed) + ")"

        def cfg(note: str, facts: dict = facts) -> str:
            s = facts[note].setting
            return "?" if s is None else s

        member = r.name.rsplit(":", 1)[-1]
        kernel = short_name(member) if r.package and is_kernel(member) else \
            r.name.rsplit("/", 1)[-1]
        out.append("| " + " | ".join([
            f"`{kernel}`", verdict, reloc_text, dom0, cfg("PHYS32_ENTRY"), cfg("XENFEAT_dom0"),
            cfg("PHYS32_RELOC align"), cfg("PHYS32_RELOC min"), cfg("bzImage relocatable_kernel")
            if "bzImage relocatable_kernel" in facts else "?", cfg("PHYS32_RELOC max"),
        ]) + " |")
    return out
