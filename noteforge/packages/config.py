"""A kernel's build configuration (.config syntax: CONFIG_X=value lines and
'# CONFIG_X is not set'), and the settings that decide its Xen notes."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SET = re.compile(r"(CONFIG_[A-Za-z0-9_]+)=(.*)")
_UNSET = re.compile(r"# (CONFIG_[A-Za-z0-9_]+) is not set")

# The settings check shows beside the note values they explain.
RELEVANT = (
    "CONFIG_XEN_PVH",
    "CONFIG_XEN_DOM0",
    "CONFIG_PHYSICAL_ALIGN",
    "CONFIG_PHYSICAL_START",
    "CONFIG_RELOCATABLE",
    "CONFIG_RANDOMIZE_BASE",
)


@dataclass(frozen=True)
class KernelConfig:
    source: str  # the file, PACKAGE:MEMBER, or "IMAGE [IKCONFIG]"
    values: dict[str, str]  # name -> value as written; "n" for "is not set"

    def get(self, name: str) -> str | None:
        """The value, or None when the option is absent (not set either)."""
        return self.values.get(name)

    def enabled(self, name: str) -> bool:
        return self.values.get(name) in ("y", "m")

    def number(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        try:
            return int(value.strip('"'), 0)
        except ValueError:
            return None

    def to_dict(self) -> dict:
        return {"source": self.source,
                "values": {k: self.values.get(k, "n") for k in RELEVANT}}


def parse_config(text: str, source: str) -> KernelConfig:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        m = _SET.fullmatch(line)
        if m:
            values[m.group(1)] = m.group(2)
            continue
        m = _UNSET.fullmatch(line)
        if m:
            values[m.group(1)] = "n"
    return KernelConfig(source, values)
