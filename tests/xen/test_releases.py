"""The release model (noteforge.xen.releases): version strings as people have
them, and which behaviours each release has. Expected values: the RELEASE tags
of xen-project/xen and `git tag --contains` of each commit named in the table."""

from __future__ import annotations

import pytest

from noteforge.errors import UsageError
from noteforge.xen.releases import (
    BEHAVIOURS,
    MODULE_CMDLINE,
    NEWEST,
    RELEASES,
    RELOCATION,
    XENFEAT_DOM0,
    Rules,
    behaviours_for,
    choose_release,
    parse_release,
    parse_release_list,
    releases_with,
    span_text,
)

DEBIAN_BANNER = (
    "(XEN) Xen version 4.20.5-pre (Debian 4.20.4+63-g7abfd2bce2-0+deb13u1) "
    "(pkg-xen-devel@lists.alioth.debian.org) (x86_64-linux-gnu-gcc (Debian 14.2.0-19) 14.2.0) "
    "debug=n Tue Nov  3 20:11:50 UTC 2026"
)


def test_the_tags():
    assert len(RELEASES) == 31 and str(RELEASES[0]) == "4.17.0" and str(NEWEST) == "4.22.0"
    assert [str(r) for r in RELEASES if r.branch == "4.21"] == ["4.21.0", "4.21.1", "4.21.2"]


@pytest.mark.parametrize("text, release", [
    ("4.19", "4.19.6"),
    ("4.20.4", "4.20.4"),
    ("4.20.4+63-g7abfd2bce2-0+deb13u1", "4.20.4"),
    (DEBIAN_BANNER, "4.20.4"),
    ("Xen version 4.21.2 (mockbuild@) (gcc (GCC) 15.2.1) debug=n", "4.21.2"),
    # the compiler's own "(Debian 12.2.0-14)" is not the package
    ("Xen version 4.21.2 (root@) (gcc (Debian 12.2.0-14) 12.2.0) debug=y", "4.21.2"),
    ("4.17.2-pre (Debian 4.17.1+2-gb773c48e36-1) (pkg-xen-devel@) (gcc) debug=n", "4.17.1"),
    ("4.19.4-pre (root@) (gcc (Alpine 12.2.1_git20220924-r10) 12.2.1) debug=y", "4.19.3"),
    ("4.17.5 (mockbuild@[unknown]) (gcc (GCC) 12.3.1 20230508 (Red Hat 12.3.1-1)) debug=n",
     "4.17.5"),
    ("4.21.1-1.fc43", "4.21.1"),
    ("4.19.1-r0", "4.19.1"),
    ("4.18.3_06-150600.3.12.1", "4.18.3"),
    ("xen_version            : 4.19.1", "4.19.1"),
])
def test_versions_people_have(text, release):
    assert str(parse_release(text).release) == release


def test_branch_alone_says_so():
    c = parse_release("4.21")
    assert str(c.release) == "4.21.2" and c.notes == ("4.21 alone: the newest 4.21.x, 4.21.2",)


def test_newer_and_older_than_known_warn():
    c = parse_release("4.23.1")
    assert c.release == NEWEST and "newer than the releases noteforge knows" in c.warnings[0]
    assert parse_release("4.23-unstable (root@) (gcc)").release == NEWEST
    c = parse_release("4.16.2")
    assert str(c.release) == "4.17.0" and "older than" in c.warnings[0]


@pytest.mark.parametrize("text", ["foo", "", "5", "latest", "v"])
def test_not_a_version_is_a_usage_error(text):
    with pytest.raises(UsageError, match="expected a Xen release"):
        parse_release(text)


def test_flag_wins_then_log_then_default():
    assert choose_release("4.19.2", DEBIAN_BANNER).source == "flag"
    c = choose_release(None, DEBIAN_BANNER)
    assert (str(c.release), c.source) == ("4.20.4", "log")
    c = choose_release(None, None)
    assert (c.release, c.source) == (NEWEST, "default")
    assert c.describe() == "as Xen 4.22.0 does (the newest release); pass --xen-version for yours"


def test_lists():
    assert parse_release_list("all") == RELEASES
    assert parse_release_list("4.20.4") is None
    assert [str(r) for r in parse_release_list("4.20.4, 4.22 4.21.0")] == [
        "4.20.4", "4.21.0", "4.22.0"]


@pytest.mark.parametrize("behaviour, span", [
    (RELOCATION, "4.19, 4.20, 4.21, 4.22"),
    (XENFEAT_DOM0, "4.20.4+, 4.21.2+, 4.22"),
    (MODULE_CMDLINE, "4.18.5+, 4.19.2+, 4.20.1+, 4.21, 4.22"),
])
def test_first_releases(behaviour, span):
    assert span_text(releases_with(behaviour)) == span


def test_rules_per_release():
    r = Rules.of(parse_release("4.18.6").release)
    assert (r.relocates, r.find_memory, r.metadata_layout) == (False, "larger-side", "current")
    r = Rules.of(parse_release("4.20.0").release)
    assert (r.relocates, r.find_memory, r.metadata_layout) == (True, "lowest", "legacy")
    assert r.dom0_cmdline(None) == (None, None)  # 4.20.x: no string, no kextra -> NULL
    assert Rules.of(parse_release("4.19.0").release).dom0_cmdline(None)[0] == ""
    assert Rules.of(NEWEST).dom0_cmdline(None)[0] == ""
    long = "x" * 1500
    assert len(r.dom0_cmdline(long)[0]) == 1023 and Rules.of(NEWEST).dom0_cmdline(long)[0] == long
    assert "TPM2" not in Rules.of(parse_release("4.19.4").release).acpi_tables()
    assert "TPM2" in Rules.of(parse_release("4.19.5").release).acpi_tables()


def test_every_behaviour_is_in_the_newest_release_or_documented():
    newest = behaviours_for(NEWEST)
    for b in BEHAVIOURS:
        # only 4.19's and 4.20's command line buffers were replaced later
        assert b.id in newest or b.id in ("dom0-cmdline-static", "dom0-cmdline-null"), b.id
