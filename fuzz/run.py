#!/usr/bin/env python3
"""Run the fuzz harnesses (atheris/libFuzzer) for a bounded time or number of
executions each, and report executions, time and coverage.

    python fuzz/run.py                      # every harness, 30 s each
    python fuzz/run.py image e820 -t 600 -j 2
    python fuzz/run.py --runs 100000 notes
    python fuzz/run.py --replay tests/data/fuzz-regressions   # run saved inputs once

Each harness NAME is fuzz/fuzz_NAME.py. Its corpus is the seed folder built by
fuzz/make_corpus.py (built first if missing) plus a work folder where libFuzzer
keeps the new inputs it finds; both live under $NOTEFORGE_FUZZ_DIR (default
$NOTEFORGE_CACHE/fuzz, ~/.cache/noteforge/fuzz). Crashing inputs are saved
to .../crashes/NAME/.

Exit status: 0 when no harness crashed, hung or blew its memory limit; 1
otherwise (the crashing inputs' paths are printed); 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = ("image", "bzimage", "notes", "e820", "placement", "writer", "package")

# libFuzzer's status lines: "#1234\tNEW    cov: 456 ft: 789 corp: ..." and the
# -print_final_stats=1 block ("stat::number_of_executed_units: N").
_STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+)(?: corp: (\d+)/)?")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


@dataclass
class Outcome:
    name: str
    returncode: int
    seconds: float
    execs: int = 0
    cov: int = 0
    ft: int = 0
    corpus: int = 0
    peak_rss_mb: int = 0
    artifacts: tuple[str, ...] = ()
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.artifacts


def fuzz_dir() -> Path:
    """$NOTEFORGE_FUZZ_DIR, else $NOTEFORGE_CACHE/fuzz (~/.cache/noteforge/fuzz)."""
    if os.environ.get("NOTEFORGE_FUZZ_DIR"):
        return Path(os.environ["NOTEFORGE_FUZZ_DIR"])
    cache = Path(os.environ.get("NOTEFORGE_CACHE", Path.home() / ".cache" / "noteforge"))
    return cache / "fuzz"


def parse_log(text: str, outcome: Outcome) -> Outcome:
    artifacts = []
    for line in text.splitlines():
        m = _STATUS.match(line)
        if m:
            outcome.execs = max(outcome.execs, int(m.group(1)))
            outcome.cov = max(outcome.cov, int(m.group(3)))
            outcome.ft = max(outcome.ft, int(m.group(4)))
            if m.group(5):
                outcome.corpus = int(m.group(5))
            continue
        m = _STAT.match(line)
        if m:
            if m.group(1) == "number_of_executed_units":
                outcome.execs = max(outcome.execs, int(m.group(2)))
            elif m.group(1) == "peak_rss_mb":
                outcome.peak_rss_mb = int(m.group(2))
            continue
        m = _ARTIFACT.search(line)
        if m:
            artifacts.append(m.group(1))
    outcome.artifacts = tuple(artifacts)
    return outcome


def run_one(name: str, args: argparse.Namespace) -> Outcome:
    base = fuzz_dir()
    seeds = base / "seeds" / name
    work = base / "work" / name
    crashes = base / "crashes" / name
    logs = base / "logs"
    for d in (work, crashes, logs):
        d.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    cmd = [sys.executable, str(HERE / f"fuzz_{name}.py")]
    if args.replay:
        cmd += [str(p) for p in args.replay_files(name)]
    else:
        cmd += [str(work), str(seeds)]
        if args.runs:
            cmd.append(f"-runs={args.runs}")
        if args.time:
            cmd.append(f"-max_total_time={args.time}")
        cmd += [f"-max_len={args.max_len}", "-len_control=50"]
    cmd += [
        f"-timeout={args.unit_timeout}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-artifact_prefix={crashes}/",
        "-print_final_stats=1",
    ]
    if args.dict and (HERE / f"{name}.dict").exists():
        cmd.append(f"-dict={HERE / f'{name}.dict'}")
    start = time.monotonic()
    env = dict(os.environ)
    env.setdefault("NOTEFORGE_FUZZ_TMP", "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp")
    # Wall-clock bound on the whole run: libFuzzer's own budget plus slack for
    # start-up and the final merge, so a wedged harness cannot hang CI.
    limit = (args.time or 0) + 120 + (args.unit_timeout * 2) if args.time else None
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                cwd=HERE.parent)
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = 124
    # the harness's scratch folder (fuzz/common.py scratch())
    shutil.rmtree(Path(env["NOTEFORGE_FUZZ_TMP"]) / f"noteforge-fuzz-{proc.pid}",
                  ignore_errors=True)
    outcome = Outcome(name, rc, time.monotonic() - start, log=log)
    return parse_log(log.read_text(errors="replace"), outcome)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run noteforge's fuzz harnesses.")
    ap.add_argument("names", nargs="*", help=f"harnesses (default: all of {', '.join(HARNESSES)})")
    ap.add_argument("-t", "--time", type=int, default=None,
                    help="seconds per harness (default 30 unless --runs is given)")
    ap.add_argument("-n", "--runs", type=int, default=None, help="executions per harness")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="harnesses run at once")
    ap.add_argument("--unit-timeout", type=int, default=10, help="seconds one input may take")
    ap.add_argument("--rss-limit-mb", type=int, default=2048)
    ap.add_argument("--max-len", type=int, default=65536)
    ap.add_argument("--no-dict", dest="dict", action="store_false")
    ap.add_argument("--replay", type=Path, default=None,
                    help="run the saved inputs under DIR/NAME/* once each instead of fuzzing")
    ap.add_argument("--no-seeds", action="store_true", help="do not (re)build missing seeds")
    args = ap.parse_args(argv)
    names = args.names or list(HARNESSES)
    bad = [n for n in names if n not in HARNESSES]
    if bad:
        ap.error(f"unknown harness {', '.join(bad)}: expected {', '.join(HARNESSES)}")
    if args.time is None and args.runs is None:
        args.time = 30

    def replay_files(name: str) -> list[Path]:
        return sorted(p for p in (args.replay / name).glob("*") if p.is_file())

    args.replay_files = replay_files
    if args.replay:
        names = [n for n in names if replay_files(n)]
    elif not args.no_seeds and any(not (fuzz_dir() / "seeds" / n).is_dir() for n in names):
        subprocess.run([sys.executable, str(HERE / "make_corpus.py"),
                        "--out", str(fuzz_dir() / "seeds")], check=True)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(lambda n: run_one(n, args), names))

    print(f"{'harness':10} {'status':8} {'execs':>10} {'secs':>7} {'exec/s':>7} {'cov':>6} "
          f"{'ft':>6} {'corpus':>6} {'rss MB':>6}")
    for o in outcomes:
        status = "ok" if o.ok else ("TIMEOUT" if o.returncode == 124 else "CRASH")
        rate = o.execs / o.seconds if o.seconds else 0
        print(f"{o.name:10} {status:8} {o.execs:10d} {o.seconds:7.1f} {rate:7.0f} {o.cov:6d} "
              f"{o.ft:6d} {o.corpus:6d} {o.peak_rss_mb:6d}")
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"{o.name}: exit status {o.returncode}; log {o.log}")
        for a in o.artifacts:
            print(f"  input: {a}")
    total = sum(o.execs for o in outcomes)
    print(f"total: {total} executions, {len(outcomes)} harnesses, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
