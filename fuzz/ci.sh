#!/usr/bin/env bash
# CI fuzz step (issue 8): a short, bounded run of every fuzz harness.
#
#   bash fuzz/ci.sh            # 20 s per harness, two at a time (about 1-2 minutes)
#   FUZZ_SECONDS=60 FUZZ_JOBS=2 bash fuzz/ci.sh
#
# Uses $PYTHON if set, else the repository's .venv (what .ci/run creates), else
# python3; installs atheris into it when missing. Builds the
# seed corpora from ../shared (fuzz/make_corpus.py), runs fuzz/run.py, and
# exits non-zero if any harness crashed, hung or ran out of memory (the
# crashing inputs' paths are printed; replay one with
# `python fuzz/fuzz_NAME.py FILE`, shrink it with fuzz/minimize.py).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY=python3
fi
if ! "$PY" -c "import atheris" 2>/dev/null; then
    echo "fuzz/ci.sh: installing atheris into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install -q atheris
fi

SECONDS_EACH="${FUZZ_SECONDS:-20}"
JOBS="${FUZZ_JOBS:-2}"
# A fresh corpus folder per CI run: the seeds are rebuilt from ../shared and
# what a previous run grew on this machine does not carry over.
if [[ -z "${NOTEFORGE_FUZZ_DIR:-}" ]]; then
    NOTEFORGE_FUZZ_DIR="$(mktemp -d /tmp/noteforge-fuzz-ci.XXXXXX)"
    CLEAN_UP=1  # removed after a clean run; kept (with the crashing inputs) otherwise
fi
export NOTEFORGE_FUZZ_DIR
"$PY" fuzz/make_corpus.py
"$PY" fuzz/run.py -t "$SECONDS_EACH" -j "$JOBS" --unit-timeout 20
if [[ -n "${CLEAN_UP:-}" ]]; then
    rm -rf "$NOTEFORGE_FUZZ_DIR"
fi
