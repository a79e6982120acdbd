"""The fleet check: many kernel images against many machines' maps.

verify answers for one image on one map; the matrix answers the same question
for every (image, map, dom0 size, policy) combination, with the same names and
meanings as `verify --json`, and without repeating work:

- each image is opened once (in parallel processes, because a 60 MB bzImage
  costs a decompression) and only its KernelParams, a few ints, are kept;
- each map is read and cleaned once (Xen's clean-up, xen/arch/x86/e820.c);
- dom0's map is derived once per (map, dom0 size) (pvh_setup_e820);
- only place() runs per (image, policy), which is microseconds.

Rows are produced lazily, map after map, so a run's memory does not grow with
the number of maps; the Summary keeps counts, a bounded list of failing maps and
a bounded heat map. Writers stream rows to JSON Lines or CSV through a temporary
file in the target folder that is renamed into place at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from noteforge.errors import NoteforgeError
from noteforge.fleet.inputs import ImageInfo, MapInfo, load_map
from noteforge.maps.model import E820Entry
from noteforge.xen.abi import GAP_TYPE

# The keys of one result row, in CSV column order. image..blocking are the
# issue's contract; xen_release (the Xen release modelled, for the xen
# policy) and its source (flag, log, default), dom0_pages, dom0_capable and
# warnings are verify's JSON names for the same facts; message is the error
# text of a bad-input row.
ROW_KEYS = (
    "image",
    "map",
    "dom0_mem",
    "policy",
    "xen_release",
    "xen_release_source",
    "loads",
    "reason",
    "base",
    "entry",
    "relocated",
    "blocking",
    "dom0_pages",
    "dom0_capable",
    "warnings",
    "message",
)

BAD_INPUT = "bad-input"
IN_PLACE = "in-place"
RELOCATED = "relocated"



# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class MatrixSpec:
    """Everything a run needs besides the maps, which are streamed."""

    images: tuple[ImageInfo, ...]
    dom0_mems: tuple[str | None, ...] = (None,)
    policies: tuple[str, ...] = ("xen",)
    xen_version: str | None = None

    @property
    def variants(self) -> list[tuple[str | None, str]]:
        """(dom0_mem, policy) pairs in row order."""
        return [(d, p) for d in self.dom0_mems for p in self.policies]

    def policy_and_release(self, label: str) -> tuple[str, str | None]:
        """A policy label is a policy, or `xen@RELEASE` when the run models
        several Xen releases (matrix --xen-version A --xen-version B): one
        variant per release, like dom0 sizes."""
        policy, at, version = label.partition("@")
        return policy, (version if at else self.xen_version)


def policy_labels(policies: Sequence[str], xen_versions: Sequence[str]) -> tuple[str, ...]:
    """The row policies of a run: `xen` once per release when several are
    asked for (`xen@4.19.6`, `xen@4.22.0`...), other policies as they are."""
    if len(xen_versions) < 2:
        return tuple(policies)
    return tuple(label for p in policies
                 for label in ([f"xen@{v}" for v in xen_versions] if p == "xen" else [p]))


def _blocking_dict(entry: E820Entry | None) -> dict | None:
    """As Placement.to_dict() writes `blocking` (an address range the map does
    not describe is a synthetic GAP_TYPE entry named "not in map")."""
    if entry is None:
        return None
    d = entry.to_dict()
    if entry.type == GAP_TYPE:
        d["type_name"] = "not in map"
    return d


def _release_keys(choice) -> dict:
    """xen_release and xen_release_source of a row (None for the policies
    that are not a Xen release, and for a map that could not be read)."""
    if choice is None:
        return {"xen_release": None, "xen_release_source": None}
    return {"xen_release": str(choice.release), "xen_release_source": choice.source}


def _bad_rows(
    spec: MatrixSpec, map_path: str, dom0_mem: str | None, message_for
) -> Iterator[dict]:
    for img in spec.images:
        for policy in spec.policies:
            yield _row(img.path, map_path, dom0_mem, policy, message=message_for(img),
                       dom0_capable=img.dom0_capable)


def _row(
    image: str,
    map_path: str,
    dom0_mem: str | None,
    policy: str,
    *,
    message: str,
    dom0_capable: bool,
    dom0_pages: int | None = None,
    release=None,
) -> dict:
    return {
        "image": image,
        "map": map_path,
        "dom0_mem": dom0_mem,
        "policy": policy,
        **_release_keys(release),
        "loads": False,
        "reason": BAD_INPUT,
        "base": None,
        "entry": None,
        "relocated": False,
        "blocking": None,
        "dom0_pages": dom0_pages,
        "dom0_capable": dom0_capable,
        "warnings": [],
        "message": message,
    }


def map_rows(spec: MatrixSpec, mp: MapInfo) -> Iterator[dict]:
    """Every row for one map: dom0 sizes, then images, then policies.

    The same steps as verify.verify() without --align-from, initrd or
    command line, in the same order, each done once for all the rows that
    share it: dom0's size (from the map's Xen log, "all", or
    dom0_compute_nr_pages, estimated) and dom0's map per (map, dom0 size), then
    per image and policy the placement and the two checks outside it
    (initdom_check_parms, the dom0 allocation)."""
    from noteforge.verify import dom0_check, estimate_is_uncertain, outcome
    from noteforge.xen.dom0_build import dom0_map
    from noteforge.xen.placement import place, rules_for
    from noteforge.xen.releases import choose_release

    # --xen-version wins over the map's banner; neither: the newest release.
    # Worked out once per map and policy: the check depends on the release only.
    base: dict[str, str] = {}
    releases: dict[str, object] = {}
    choices: dict[str, object] = {}
    for label in spec.policies:
        policy, version = spec.policy_and_release(label)
        base[label] = policy
        choices[label] = choose_release(version, mp.xen_version) if policy == "xen" else None
        releases[label] = choices[label].release if choices[label] is not None else None
    rules = {p: rules_for(base[p], releases[p]) for p in spec.policies}
    dom0_checks = {p: dom0_check(False, rules[p])[:2] for p in spec.policies}
    opts = {"align_override": None, "cmdline": "", "initrd_size": None}
    for dom0_mem in spec.dom0_mems:
        if mp.error is not None:
            yield from _bad_rows(spec, mp.path, dom0_mem, lambda img, e=mp.error: e)
            continue
        try:
            sizes = _Dom0Sizes(spec, mp, dom0_mem)
            d0 = dom0_map(mp.entries, sizes.nr_pages)
        except NoteforgeError as err:
            msg = f"{mp.path}: dom0_mem {dom0_mem}: {err}"
            yield from _bad_rows(spec, mp.path, dom0_mem, lambda img, e=msg: e)
            continue
        d0_entries, d0_warnings = d0.entries, list(d0.warnings)
        for img in spec.images:
            if img.params is None:
                for policy in spec.policies:
                    yield _row(img.path, mp.path, dom0_mem, policy, message=img.error or "",
                               dom0_capable=img.dom0_capable, dom0_pages=d0.nr_pages,
                               release=choices[policy])
                continue
            size = sizes.for_image(img)
            ranged = estimate_is_uncertain(size)
            for policy in spec.policies:
                refused_if_not_dom0, not_dom0 = dom0_checks[policy]
                popts = {**opts, "release": releases[policy]}
                try:
                    pl = place(img.params, d0_entries, base[policy], **popts)
                except NoteforgeError as err:
                    yield _row(img.path, mp.path, dom0_mem, policy, message=str(err),
                               dom0_capable=img.dom0_capable, dom0_pages=d0.nr_pages,
                               release=choices[policy])
                    continue
                warnings = list(size.warnings) if size is not None else []
                if img.broken:
                    warnings.append(f"Xen's note parse fails: {img.broken}")
                if not img.dom0_capable:
                    warnings.append(not_dom0)
                loads, reason, message = outcome(
                    pl, refused=refused_if_not_dom0 and not img.dom0_capable, size=size
                )
                if message is None and reason is not None:
                    message = rules[policy].failure_message(reason)
                warnings.extend(pl.warnings)
                warnings.extend(d0_warnings)
                if ranged:
                    warnings.extend(sizes.sensitivity(img.params, base[policy], popts, size,
                                                      pl))
                yield {
                    "image": img.path,
                    "map": mp.path,
                    "dom0_mem": dom0_mem,
                    "policy": policy,
                    **_release_keys(choices[policy]),
                    "loads": loads,
                    "reason": reason,
                    "base": pl.base,
                    "entry": pl.entry,
                    "relocated": pl.relocated,
                    "blocking": _blocking_dict(pl.blocking),
                    "dom0_pages": d0.nr_pages,
                    "dom0_capable": img.dom0_capable,
                    "warnings": warnings,
                    "message": message,
                }


class _Dom0Sizes:
    """dom0's size on one map for one --dom0-mem value, as verify decides it:
    the Xen log's own Dom0 memory map when the user gives no size, else
    dom0_mem (the user's, or the log's dom0_mem=), "all" meaning all RAM, else
    dom0_compute_nr_pages estimated with the kernel file as a boot module.

    The boot modules only move the "Xen fails to build dom0" threshold (fails,
    may_fail and the words about it), never nr_pages, and that threshold is
    monotonic in their size: when the largest image does not come near it, the
    one Dom0Size computed for it is what every smaller image gets too. Only
    near the limit is the size computed per image."""

    def __init__(self, spec: MatrixSpec, mp: MapInfo, dom0_mem: str | None):
        from noteforge.xen.dom0_mem import XenEstimate, compute_nr_pages

        self._compute = compute_nr_pages
        self._estimate = XenEstimate
        self._entries = mp.entries
        self.shared = None
        self._cache: dict[int, object] = {}
        self._maps: dict[int, tuple] = {}  # dom0 maps for the plausible size range
        if dom0_mem is None and mp.log_nr_pages is not None:
            self.mem = None
            self.nr_pages = mp.log_nr_pages
            return
        self.mem = dom0_mem if dom0_mem is not None else mp.log_dom0_mem
        if self.mem is not None and self.mem.strip().lower() == "all":
            self.mem = None
            self.nr_pages = None
            return
        self._top = max((i.file_size for i in spec.images if i.params is not None), default=0)
        self.shared = self._size(self._top)
        self.nr_pages = self.shared.nr_pages

    def _size(self, boot_modules: int):
        size = self._cache.get(boot_modules)
        if size is None:
            size = self._compute(self.mem, self._entries,
                                 estimate=self._estimate(boot_modules=boot_modules))
            self._cache[boot_modules] = size
        return size

    def sensitivity(self, params, policy: str, opts: dict, size, at) -> list[str]:
        """verify._range_sensitivity, with dom0's map for the smallest and the
        largest plausible size derived once per map instead of once per row,
        and no placement redone on a map equal to the one `at` came from."""
        from noteforge.verify import sensitivity_warning
        from noteforge.xen.dom0_build import dom0_map
        from noteforge.xen.placement import place

        alternatives = []
        for label, pages in (("smallest", size.low), ("largest", size.high)):
            if pages == self.nr_pages:
                continue  # the same map: the same verdict as `at`
            entries = self._maps.get(pages)
            if entries is None:
                entries = self._maps[pages] = dom0_map(self._entries, pages).entries
            alternatives.append((label, pages, place(params, entries, policy, **opts)))
        return sensitivity_warning(alternatives, at)

    def for_image(self, img: ImageInfo):
        if self.shared is None:
            return None
        b = img.file_size
        if 0 < b <= self._top and not self.shared.may_fail:
            return self.shared
        size = self._size(b)
        if size.nr_pages != self.nr_pages:  # not expected: nr_pages ignores the modules
            raise NoteforgeError(f"{img.path}: dom0 size depends on the boot modules")
        return size


def iter_rows(spec: MatrixSpec, map_paths: Iterable[str]) -> Iterator[dict]:
    """All rows, map after map, reading each map once as it comes."""
    for path in map_paths:
        yield from map_rows(spec, load_map(path))
