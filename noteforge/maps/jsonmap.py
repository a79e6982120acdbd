"""The JSON shape noteforge prints (HostMap.to_dict, `e820 --json`), or a bare
list of entries."""

from __future__ import annotations

import json

from noteforge.errors import MapError
from noteforge.maps.choose import finish_map
from noteforge.maps.model import (
    U64_MAX,
    E820Entry,
    HostMap,
)
from noteforge.maps.syntax import TABLE_TYPES, Block, quote, type_from_name
from noteforge.units import int_text

# --------------------------------------------------------------------------
# JSON


def parse_json(text: str, source: str, which) -> HostMap:
    try:
        data = json.loads(text, parse_int=lambda digits: _json_digits(digits, source))
    except json.JSONDecodeError as err:
        raise MapError(f"{source}:{err.lineno}: expected JSON: {err.msg}") from None
    name = "json"
    items = data
    if isinstance(data, dict):
        if "entries" not in data:
            raise MapError(f"{source}: expected a JSON object with an 'entries' list")
        items = data["entries"]
        if isinstance(data.get("map_name"), str):
            name = data["map_name"]
    if not isinstance(items, list):
        raise MapError(f"{source}: expected 'entries' to be a list")
    block = Block(name=name, fmt="json", line=1)
    for i, item in enumerate(items):
        where = f"{source}: entries[{i}]"
        if not isinstance(item, dict):
            raise MapError(f"{where}: expected an object with start, end, type")
        start = _json_int(item.get("start"), f"{where}.start")
        if "end" in item:
            end = _json_int(item["end"], f"{where}.end")
        elif "size" in item:
            end = start + _json_int(item["size"], f"{where}.size")
            if end > U64_MAX:
                raise MapError(f"{where}: start + size overflows 64 bits")
        else:
            raise MapError(f"{where}: expected 'end' (exclusive) or 'size'")
        if "type" in item and not isinstance(item["type"], bool) and isinstance(item["type"], int):
            t = item["type"]
            if not 0 <= t <= 0xFFFFFFFF:
                raise MapError(f"{where}.type: expected a 32-bit type number, got {t}")
        else:
            raw = item.get("type", item.get("type_name"))
            t = type_from_name(raw, TABLE_TYPES) if isinstance(raw, str) else None
            if t is None:
                raise MapError(f"{where}.type: expected a type number or name, got {quote(raw)}")
        if end < start:
            raise MapError(f"{where}: end {end:#x} is below start {start:#x}")
        block.add(E820Entry(start, end, t), 0)
    if not block.entries:
        raise MapError(f"{source}: the JSON map has no entries")
    return finish_map(source, [block], which, {})


def _json_digits(digits: str, source: str) -> int:
    # Bounded before int(): a 10^6-digit number is no address (and int()
    # refuses more than 4,300 digits with a ValueError json does not wrap).
    from noteforge.units import MAX_DIGITS, int_text

    try:
        return int_text(digits, 10)
    except ValueError:
        raise MapError(f"{source}: a JSON number of {len(digits):,} digits: expected an "
                       f"integer of at most {MAX_DIGITS} digits that fits in 64 bits") from None


def _json_int(value, where: str) -> int:
    if isinstance(value, bool):
        raise MapError(f"{where}: expected an integer, got {quote(value)}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        try:
            result = int_text(value, 0)
        except ValueError:
            raise MapError(f"{where}: expected an integer, got {quote(value)}") from None
    else:
        raise MapError(f"{where}: expected an integer, got {quote(value)}")
    if not 0 <= result <= U64_MAX:
        raise MapError(f"{where}: {quote(value)} does not fit in 64 bits")
    return result
