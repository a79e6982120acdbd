"""Write Xen ELF notes into a kernel image without disturbing a loaded byte:
add, change or remove PHYS32_RELOC (or any Xen note), then prove it.

Three parts, kept apart on purpose:

* planning (pure, writeplan.py): `plan_change(buf, change)` looks at the
  bytes and returns a WritePlan: the method (in-place, neutralise,
  new-note-segment, retarget-note-segment: see writeplan.py), every patch
  (offset, old bytes, new bytes, why), and what Xen will read afterwards,
  simulated on the patched bytes;
* applying (here): the input is copied into an unnamed file next to the
  target and patched; nothing is visible yet (atomic.py);
* proving (writeproof.py): the unfinished output is re-opened with the image
  reader and compared with the input; only a proven file is renamed into
  place.

No PT_LOAD is ever added, moved or resized and the program header table never
moves, which is what LIEF does when asked to add notes or segments (see
docs/xen-pvh-loading.md section 9 and tests/test_writer_lief.py); LIEF is not
used.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from noteforge.errors import ImageError, UsageError, WriteError
from noteforge.units import hexsize
from noteforge.write.atomic import AtomicFile, file_mode, pause_point, scratch_file
from noteforge.write.plan import (  # noqa: F401 - the public API is re-exported here
    ELF_FORMATS,
    METHOD_IN_PLACE,
    METHOD_NEUTRALISE,
    METHOD_NEW_SEGMENT,
    METHOD_RETARGET,
    METHOD_TEXT,
    METHOD_UNCHANGED,
    METHOD_WOULD,
    KernelIdentity,
    NoteChange,
    Patch,
    WritePlan,
    identify_kernel,
    plan_change,
    reloc_change,
    remove_change,
    resolve_reloc,
    value_change,
)
from noteforge.write.proof import Proof, ProofCheck, prove  # noqa: F401
from noteforge.write.target import LockedInput, output_path

# --- the whole operation ----------------------------------------------------


@dataclass(frozen=True)
class WriteResult:
    input: str
    output: str | None  # None for a dry run
    input_format: str
    converted: bool  # a bzImage / compressed input written out as an ELF vmlinux
    plan: WritePlan
    proof: Proof | None
    dry_run: bool

    def to_dict(self) -> dict:
        return {
            "input": self.input,
            "output": self.output,
            "input_format": self.input_format,
            "converted_to_elf": self.converted,
            "dry_run": self.dry_run,
            "unchanged": self.plan.unchanged,
            "plan": self.plan.to_dict(),
            "proof": self.proof.to_dict() if self.proof else None,
        }


def write_note_change(image: str | os.PathLike, change: NoteChange, *,
                      output: str | os.PathLike | None = None, in_place: bool = False,
                      dry_run: bool = False, force: bool = False) -> WriteResult:
    """Plan `change` for `image`, then (unless dry_run) write it to `output`
    or over `image` atomically, prove the result, and only then rename it
    into place. A bzImage or compressed input is written as an ELF vmlinux.
    A dry run needs no destination and writes nothing. When the image
    already reads as asked (plan.unchanged), --in-place leaves the file
    untouched (same inode, same mtime) and -o still writes the output, an
    identical copy (of the extracted ELF for a bzImage), so a pipeline that
    reads OUTPUT next finds it."""
    from noteforge.image.open import extract_into, open_image

    src = Path(image)
    if output is not None and in_place:
        raise UsageError("give exactly one of -o OUTPUT or --in-place")
    if output is None and not in_place and not dry_run:
        raise UsageError("give exactly one of -o OUTPUT or --in-place (or --dry-run)")
    # An --in-place input is locked before it is read (write/target.py), and
    # must not have been replaced between the lock and the read.
    guard = LockedInput(src, force=force) if in_place and not dry_run else None
    try:
        original = open_image(str(src))
        if guard is not None:
            guard.check_unchanged()
    except BaseException:
        if guard is not None:
            guard.close()
        raise
    converted = original.format not in ELF_FORMATS
    if converted and in_place and not dry_run:
        guard.close()
        raise UsageError(
            f"{src} is a {original.format}: the result is an ELF vmlinux (re-compressing it "
            "inside the bzImage would break the bzImage's own decompressor), so it cannot "
            "replace the input; use -o OUTPUT")
    if converted and not dry_run and output is not None and _same_file(src, output):
        raise UsageError(f"{src} is a {original.format}: writing the ELF result over it would "
                         "replace the bzImage; choose another output")
    if in_place or output is None:
        target = Path(os.path.realpath(src))
    else:
        # -o is used as given, never resolved: not the input, not a link.
        target = output_path(src, output) if not dry_run else Path(output)
    mode = file_mode(src)
    fd = -1
    try:
        fd = guard.fd if guard is not None else -1
        elf_image = original
        if converted:
            # The bzImage's ELF goes to an unnamed file in $TMPDIR: a killed
            # run leaves no extracted copy behind.
            fd = scratch_file(str(src))
            extract_into(str(src), fd, what=f"temporary file for {src}")
            elf_image = open_image(f"/proc/self/fd/{fd}")
        elif fd < 0:
            fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        size = os.fstat(fd).st_size
        if size == 0:
            raise ImageError(f"{src}: empty file")
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buf:
            plan = plan_change(buf, change, path=str(src), force=force,
                               kernel_config=lambda: kernel_config(src),
                               kernel_version=original.kernel_version)
            if dry_run or (plan.unchanged and in_place):
                return WriteResult(str(src), None if dry_run else str(target),
                                   original.format, converted, plan, None, dry_run)
            if guard is not None:
                guard.check_replaceable()
            proof = _apply_and_prove(buf, fd, size, plan, target, mode, elf_image, guard)
    finally:
        if guard is not None:
            guard.close()
        elif fd >= 0:
            os.close(fd)
    return WriteResult(str(src), str(target), original.format, converted, plan, proof, False)


def kernel_config(src: Path):
    """The kernel's configuration, when it can be found: the file shipped
    beside it (/boot/config-V for /boot/vmlinuz-V), else the one
    CONFIG_IKCONFIG embedded in the image; None otherwise (a configuration
    that cannot be read is no configuration: the writer then assumes the
    smaller KERNEL_IMAGE_SIZE)."""
    from noteforge.errors import NoteforgeError
    from noteforge.image.ikconfig import embedded_config
    from noteforge.packages.config import parse_config
    from noteforge.packages.find import config_beside

    try:
        name, text = config_beside(str(src))
        if text is None:
            name, text = f"{src} [IKCONFIG]", embedded_config(src)
        return None if text is None else parse_config(text, name)
    except NoteforgeError:
        return None


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _apply_and_prove(buf, fd: int, size: int, plan: WritePlan, target: Path, mode: int,
                     elf_image, guard: LockedInput | None = None) -> Proof:
    check = guard.check_unchanged if guard is not None else None
    with AtomicFile(target, mode=mode, before_replace=check) as out:
        if guard is not None:
            out.keep_from(guard.stat, guard.fd)
        out.copy_from(fd, size)
        pause_point("copied")
        for p in plan.patches:
            out.write_at(p.offset, p.new)
        if plan.new_size < size:  # never happens: writes only grow a file
            out.truncate(plan.new_size)
        pause_point("written")
        with mmap.mmap(out.fd, 0, access=mmap.ACCESS_READ) as written:
            proof = prove(buf, written, out.path, plan, old_image=elf_image,
                          expected_mode=mode, out_fd=out.fd, src_fd=fd)
        if not proof.ok:
            bad = "; ".join(f"{c.name}: {c.detail}" for c in proof.failures())
            raise ProofFailed(f"{target}: the written image failed its proof ({bad}); "
                              "nothing was written", proof)
        out.commit()
    return proof


class ProofFailed(WriteError):
    def __init__(self, message: str, proof: Proof):
        super().__init__(message)
        self.proof = proof


def set_reloc(image, *, align: int | None = None, min_addr: int | None = None,
              max_addr: int | None = None, words: int | None = None, **kw) -> WriteResult:
    """Give `image` a PHYS32_RELOC note with the given words; words not given
    keep the image's values, `words` drops trailing ones (see reloc_change)."""
    return write_note_change(image, reloc_change(align, min_addr, max_addr, words=words), **kw)


def set_note(image, note_type: int, value: str, *, size: int | None = None,
             **kw) -> WriteResult:
    """Set Xen note `note_type` to `value` (encoded by value_change, sized
    like the existing note when there is one)."""
    from noteforge.image.open import open_image

    img = open_image(str(image))
    existing = [n.descsz for n in img.notes if n.is_xen and n.type == note_type]
    change = value_change(note_type, value, size=size, elf_class=img.elf_class,
                          existing_size=existing[-1] if existing else None)
    return write_note_change(image, change, **kw)


def remove_note(image, note_type: int, **kw) -> WriteResult:
    return write_note_change(image, remove_change(note_type), **kw)


def describe_space(plan: WritePlan) -> str:
    if not plan.notes_area:
        return ""
    s, e = plan.notes_area
    where = "appended at the end of the file" if s >= plan.old_size else \
        "in unused zero space before the first loaded byte"
    return f"new notes at {s:#x}-{e:#x} ({hexsize(e - s)}), {where}"
