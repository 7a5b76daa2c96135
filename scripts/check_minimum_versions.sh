#!/usr/bin/env bash
# Prove the minimum versions pyproject.toml declares: install exactly those minimums into a fresh venv and run a
# smoke subset of the tests against them (training a tiny model, eval, predict, export, the metrics, the losses,
# EMA, the loggers, the sweeper and launcher configs, the CRF).
#
#   scripts/check_minimum_versions.sh            # venv in /tmp/seglab-minimum-venv, log on stdout
#   VENV=/some/dir PYTHON=python3.11 scripts/check_minimum_versions.sh
#
# Every requirement of the core install, of every extra and of `dev` that reads `name>=X` is installed as
# `name==X`; what those packages need themselves is left to pip. seglab goes in with --no-deps (editable, so
# the tests run against this checkout), and panopticapi-lite (the tests' PQ reference) with --no-deps, as in
# `make install`. Takes 10-30 minutes (downloads, then the tests). Exit status: pytest's.
set -euo pipefail
unset PYTHONPATH  # the venv tests this checkout through its editable install only
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-/tmp/seglab-minimum-venv}
SMOKE_TESTS=(
    tests/test_losses.py tests/test_metrics.py tests/test_panoptic_quality.py tests/test_ema.py
    tests/test_eval.py tests/test_predict.py tests/test_export.py tests/test_crf.py
    tests/test_wandb_logger.py tests/test_mlflow_logger.py tests/test_sweeps.py tests/test_slurm.py
)

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
PINS="$VENV/minimum-pins.txt"
"$VENV/bin/python" - pyproject.toml > "$PINS" <<'PY'
"""Print name==minimum for every `name>=minimum` requirement of the core install, the extras and dev."""
import re
import sys
import tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
groups = [project["dependencies"], *project["optional-dependencies"].values()]
for requirement in (r for group in groups for r in group):
    if requirement.startswith("seglab["):
        continue  # an extra that names other extras
    match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)>=([0-9][^,;\s]*)", requirement.replace(" ", ""))
    if not match:
        sys.exit(f"check_minimum_versions: no plain minimum in {requirement!r}")
    print(f"{match[1]}=={match[2]}")
PY
echo "== installing the declared minimums:"; cat "$PINS"
"$VENV/bin/python" -m pip install --quiet -r "$PINS"
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
"$VENV/bin/python" -m pip install --quiet --no-deps "panopticapi-lite==0.2.0"
echo "== installed:"
"$VENV/bin/python" - "$PINS" <<'PY'
"""Each pinned package with the version installed (pip installed exactly the pins, or stopped)."""
import sys
from importlib.metadata import version

for line in open(sys.argv[1]):
    name = line.split("==")[0].split("[")[0]
    print(f"{name}=={version(name)}")
PY
echo "== smoke tests: ${SMOKE_TESTS[*]}"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1} \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${SMOKE_TESTS[@]}"
