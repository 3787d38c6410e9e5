"""The package as distributed: the wheel workflow, the version, the portable C core.

* ``wheels.yml`` (repository root) and ``.github/workflows/wheels.yml`` are byte-identical
  and have the shape the release depends on (platform matrix, sdist, artifacts, trusted
  publishing with least privilege, actions pinned to commit SHAs).
* One version: pyproject.toml, the installed metadata, ``ringguard.__version__`` and
  ``ringguard --version`` agree.
* The C headers compile standalone with ``-std=c11 -pedantic -Wall -Wextra -Werror`` both
  with the compiler fast paths and with ``RG_PORTABLE_C`` (the plain-C fallbacks MSVC
  compiles), and a small C driver reproduces published and golden vectors in both modes.

Tests that need the source tree (workflow, pyproject.toml, csrc/) skip when the suite runs
against an installed wheel without it; ``RINGGUARD_EXPECT_INSTALLED=1`` (set by .ci/run's
packaging step and by cibuildwheel) makes the suite check it is not importing from src/.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import sysconfig
from typing import Any

import pytest

import ringguard

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "wheels.yml"
WORKFLOW_COPY = ROOT / ".github" / "workflows" / "wheels.yml"
CSRC = ROOT / "csrc"
VECTORS = pathlib.Path(__file__).resolve().parent / "vectors"

needs_tree = pytest.mark.skipif(not WORKFLOW.exists() or not (ROOT / "pyproject.toml").exists(),
                                reason="source tree not available")


def _toml() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _workflow() -> dict[Any, Any]:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


# ---- where the package comes from ----------------------------------------------------------


@pytest.mark.skipif(os.environ.get("RINGGUARD_EXPECT_INSTALLED") != "1",
                    reason="only when testing an installed wheel/sdist")
def test_suite_runs_against_the_installed_package() -> None:
    here = pathlib.Path(ringguard.__file__).resolve()
    assert not here.is_relative_to(ROOT / "src"), here
    installed = {pathlib.Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert any(here.is_relative_to(p) for p in installed), (here, installed)
    # wheels are built with RINGGUARD_STRICT_BUILD=1: the compiled core must be there
    assert os.environ.get("RINGGUARD_PUREPYTHON") == "1" or ringguard.BACKEND == "c"


# ---- the workflow --------------------------------------------------------------------------


@needs_tree
def test_workflow_copies_are_identical() -> None:
    assert WORKFLOW_COPY.read_bytes() == WORKFLOW.read_bytes()


@needs_tree
def test_workflow_builds_every_platform_and_publishes_on_tags_only() -> None:
    wf = _workflow()
    # PyYAML reads the bare key `on` as True
    triggers: dict[str, Any] = wf["on"] if "on" in wf else wf[True]
    assert triggers["push"]["tags"] == ["v*"]
    assert "pull_request" in triggers
    assert wf["permissions"] == {"contents": "read"}
    jobs = wf["jobs"]
    assert {"build_wheels", "sdist", "publish", "actionlint"} <= set(jobs)

    wheels = jobs["build_wheels"]
    runners = set(wheels["strategy"]["matrix"]["os"])
    # x86_64 + aarch64 Linux (manylinux, musllinux x86_64), Intel and arm64 macOS, Windows
    assert {"ubuntu-24.04", "ubuntu-24.04-arm", "macos-15-intel", "macos-14",
            "windows-2022"} == runners
    uses = [s.get("uses", "") for s in wheels["steps"]]
    assert any(u.startswith("pypa/cibuildwheel@") for u in uses)
    upload = [s for s in wheels["steps"]
              if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload and upload[0]["with"]["path"] == "wheelhouse/*.whl"
    assert "${{ matrix.os }}" in upload[0]["with"]["name"]  # one artifact name per runner

    sdist = jobs["sdist"]
    script = "\n".join(s.get("run", "") for s in sdist["steps"])
    assert "build --sdist" in script and "pytest" in script
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in sdist["steps"])

    pub = jobs["publish"]
    assert set(pub["needs"]) == {"build_wheels", "sdist"}
    assert "refs/tags/v" in pub["if"] and "push" in pub["if"]
    assert pub["permissions"] == {"id-token": "write"}  # trusted publishing, nothing else
    assert pub["environment"]["name"] == "pypi"
    pub_uses = [s.get("uses", "") for s in pub["steps"]]
    assert any(u.startswith("actions/download-artifact@") for u in pub_uses)
    assert any(u.startswith("pypa/gh-action-pypi-publish@") for u in pub_uses)
    # no job other than publish asks for more than the read-only default
    for name, job in jobs.items():
        if name != "publish":
            assert "permissions" not in job, name


@needs_tree
def test_workflow_actions_are_pinned_to_commit_shas() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert len(uses) >= 8
    for ref, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
        assert re.match(r"\s*#\s*v\d", comment), f"{ref}: tag comment missing"
    assert "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683" in text  # v4.2.2


@needs_tree
def test_cibuildwheel_configuration() -> None:
    cfg = _toml()["tool"]["cibuildwheel"]
    assert cfg["build"] == ["cp310-*", "cp311-*", "cp312-*", "cp313-*", "cp314-*", "cp314t-*"]
    assert "*-win32" in cfg["skip"] and "*_i686" in cfg["skip"]
    assert cfg["environment"]["RINGGUARD_STRICT_BUILD"] == "1"
    # tests run from a temporary directory against the installed wheel, never src/
    cmd = cfg["test-command"]
    assert "{project}/tests" in cmd and "-c {project}/pyproject.toml" in cmd
    assert "src" not in cmd
    assert cfg["test-environment"]["RINGGUARD_EXPECT_INSTALLED"] == "1"
    reqs = {re.split(r"[<>=\[]", r)[0] for r in cfg["test-requires"]}
    assert {"pytest", "hypothesis"} <= reqs
    # the heavy optional peers may lack wheels on musllinux / free-threaded builds
    assert not reqs & {"pyarrow", "pandas", "dask", "redis", "polars"}
    # the free-threaded core is claimed in the Cython source
    pyx = (ROOT / "src" / "ringguard" / "_core.pyx").read_text(encoding="utf-8")
    assert "freethreading_compatible=True" in pyx.splitlines()[0]


@needs_tree
def test_no_host_specific_compiler_flags() -> None:
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    for flag in ("-march", "-mtune", "-mcpu", "-mavx", "-msse", "-mfma", "native", "/arch:"):
        assert flag not in text, flag
    build = _toml()["build-system"]["requires"]
    # the extension has no NumPy C API, so NumPy is not a build requirement at all
    assert not any(r.lower().startswith("numpy") for r in build)
    for path in (ROOT / "src" / "ringguard").glob("*.p*"):
        assert "cimport numpy" not in path.read_text(encoding="utf-8"), path


# ---- one version ---------------------------------------------------------------------------


def test_version_has_one_source() -> None:
    from importlib.metadata import version

    installed = version("ringguard")
    assert ringguard.__version__ == installed
    if (ROOT / "pyproject.toml").exists():
        assert _toml()["project"]["version"] == installed
    src = pathlib.Path(ringguard.__file__).parent
    for path in src.rglob("*.py"):  # no second, hard-coded copy
        assert not re.search(r"__version__\s*=\s*['\"]", path.read_text(encoding="utf-8")), path


def test_cli_version() -> None:
    out = subprocess.run([sys.executable, "-m", "ringguard", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"ringguard {ringguard.__version__}"


@needs_tree
def test_changelog_records_placement_changes_as_breaking() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "breaking" in text.split("##")[0].lower()
    assert "## Unreleased" in text


# ---- the C core: strict C11, both code paths, known vectors --------------------------------

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rg_algos.h"
#include "md5.h"
#include "crc16.h"
#include "rg_slots.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
    size_t n = 0;
    if (s[0] == '-') return 0;
    while (s[0] && s[1] && n < cap) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1) break;
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

int main(void) {
    static char line[8192];
    static char hex[8192];
    static uint8_t buf[4096];
    while (fgets(line, sizeof line, stdin)) {
        unsigned long long a = 0, b = 0;
        size_t n;
        uint8_t d[16];
        int i;
        switch (line[0]) {
        case 'x': /* xxh64 <hex> <seed> */
            if (sscanf(line + 2, "%8191s %llu", hex, &a) != 2) return 2;
            n = unhex(hex, buf, sizeof buf);
            printf("%llu\n", (unsigned long long)rg_xxh64(buf, n, a));
            break;
        case 'u': /* xxh64 of the 8 LE bytes of an integer <v> <seed> */
            if (sscanf(line + 2, "%llu %llu", &a, &b) != 2) return 2;
            printf("%llu\n", (unsigned long long)rg_xxh64_u64(a, b));
            break;
        case 'm': /* md5 <hex> -> digest hex, ketama hash */
            if (sscanf(line + 2, "%8191s", hex) != 1) return 2;
            n = unhex(hex, buf, sizeof buf);
            rg_md5(buf, n, d);
            for (i = 0; i < 16; i++) printf("%02x", d[i]);
            printf(" %lu\n", (unsigned long)rg_ketama_hash(buf, n));
            break;
        case 's': /* redis slot <hex> */
            if (sscanf(line + 2, "%8191s", hex) != 1) return 2;
            n = unhex(hex, buf, sizeof buf);
            printf("%u\n", (unsigned)rg_redis_slot(buf, n));
            break;
        case 'j': /* jump <key> <buckets> */
            if (sscanf(line + 2, "%llu %llu", &a, &b) != 2) return 2;
            printf("%ld\n", (long)rg_jump(a, (int64_t)b));
            break;
        case 'l': /* ln_u <h> */
            if (sscanf(line + 2, "%llu", &a) != 1) return 2;
            printf("%a\n", rg_hrw_ln_u(a));
            break;
        case 'r': /* h mod m via the reciprocal, and mulhi */
            if (sscanf(line + 2, "%llu %llu", &a, &b) != 2) return 2;
            printf("%llu %llu\n", (unsigned long long)rg_mod(a, b, UINT64_MAX / b),
                   (unsigned long long)rg_mulhi64(a, b));
            break;
        case 'f': /* floor(log2(x)) */
            if (sscanf(line + 2, "%llu", &a) != 1) return 2;
            printf("%d\n", rg_floor_log2(a));
            break;
        default:
            return 3;
        }
    }
    return 0;
}
"""

FLAGS = ["-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]
HEADERS = ["rg_common.h", "xxh64.h", "md5.h", "crc16.h", "rg_algos.h", "rg_ring.h",
           "rg_slots.h", "rg_route.h"]


def _cc() -> str:
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    pytest.skip("no C compiler")


def _canon(key: dict[str, Any]) -> bytes:
    if "str" in key:
        return str(key["str"]).encode("utf-8")
    return (int(key["int"]) % 2**64).to_bytes(8, "little")


def _sanity_buffer(length: int) -> bytes:
    """xxHash's sanity-test buffer (``fillTestBuffer`` in xxhsum)."""
    out, gen = bytearray(), 2654435761
    for _ in range(length):
        out.append(gen >> 56)
        gen = (gen * 11400714785074694797) % 2**64
    return bytes(out)


def _redis_slot(key: bytes) -> int:
    """CLUSTER KEYSLOT from the cluster spec, with the stdlib's CRC-16/XMODEM."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return binascii.crc_hqx(key, 0) % 16384


def _hex(data: bytes) -> str:
    return data.hex() or "-"


@pytest.mark.skipif(not CSRC.is_dir(), reason="source tree not available")
@pytest.mark.skipif(sys.platform == "win32", reason="gcc/clang harness; MSVC builds the wheel")
@pytest.mark.parametrize("portable", [False, True], ids=["fast-paths", "RG_PORTABLE_C"])
def test_c_core_strict_c11_and_vectors(tmp_path: pathlib.Path, portable: bool) -> None:
    cc = _cc()
    for h in HEADERS:  # every header compiles on its own
        (tmp_path / f"only_{h}.c").write_text(f'#include "{h}"\nint main(void) {{ return 0; }}\n')
    (tmp_path / "driver.c").write_text(DRIVER)
    defs = ["-DRG_PORTABLE_C"] if portable else []
    for src in sorted(tmp_path.glob("*.c")):
        exe = tmp_path / (src.stem + ".exe")
        res = subprocess.run([cc, *FLAGS, *defs, "-I", str(CSRC), str(src), "-o", str(exe)],
                             capture_output=True, text=True)
        assert res.returncode == 0, f"{src.name}:\n{res.stderr}"

    rng = random.Random(8)
    algos = json.loads((VECTORS / "algos.json").read_text(encoding="utf-8"))
    cmds: list[str] = []
    want: list[str] = []

    # XXH64: xxHash's published sanity vectors (length, seed, hash)
    for length, seed, xh in [(0, 0, 0xEF46DB3751D8E999), (0, 2654435761, 0xAC75FDA2929B17EF),
                            (1, 0, 0xE934A84ADB052768), (4, 0, 0x9136A0DCA57457EE),
                            (14, 0, 0x8282DCC4994E35C8), (14, 2654435761, 0xC3BD6BF63DEB6DF0),
                            (222, 0, 0xB641AE8CB691C174), (222, 2654435761, 0x20CB8AB7AE10C14A)]:
        cmds.append(f"x {_hex(_sanity_buffer(length))} {seed}")
        want.append(str(xh))
    xxhash: Any
    try:
        import xxhash
    except ImportError:  # pragma: no cover - xxhash is in the test extra
        xxhash = None
    if xxhash is not None:
        for length in range(0, 130):
            data = rng.randbytes(length)
            seed = rng.getrandbits(64)
            cmds.append(f"x {_hex(data)} {seed}")
            want.append(str(xxhash.xxh64_intdigest(data, seed=seed)))
        for v in [0, 1, 7, 2**63, 2**64 - 1, rng.getrandbits(64)]:
            cmds.append(f"u {v} 0")
            want.append(str(xxhash.xxh64_intdigest(v.to_bytes(8, "little"))))
    # MD5 (hashlib) and libketama's hash, every padding case
    for length in [0, 1, 55, 56, 63, 64, 65, 119, 120, 200]:
        data = rng.randbytes(length)
        digest = hashlib.md5(data).digest()
        cmds.append(f"m {_hex(data)}")
        want.append(f"{digest.hex()} {int.from_bytes(digest[:4], 'little')}")
    # Redis Cluster slots: published examples and the stdlib CRC-16/XMODEM
    for key in [b"foo", b"{user1000}.following", b"{user1000}.followers", b"{}x", b"a{b}",
                b"", *(rng.randbytes(rng.randrange(40)) for _ in range(30))]:
        cmds.append(f"s {_hex(key)}")
        want.append(str(_redis_slot(key)))
    assert _redis_slot(b"foo") == 12182 and _redis_slot(b"{user1000}.following") == 3443
    # Jump: the paper's published sequences, and golden primaries from tests/vectors
    for key, seq in algos["jump_published"].items():
        for b, bucket in enumerate(seq, start=1):
            cmds.append(f"j {key} {b}")
            want.append(str(bucket))
    for case in algos["cases"]:
        if case["algorithm"] != "jump":
            continue
        for key, row in zip(algos["keys"], case["replicas"], strict=True):
            if xxhash is None:  # pragma: no cover
                break
            cmds.append(f"j {xxhash.xxh64_intdigest(_canon(key))} {len(case['nodes'])}")
            want.append(str(row[0]))
    # Rendezvous' ln(u): golden bit patterns (uses rg_floor_log2)
    ln_cmds = [(f"l {lh}", float.fromhex(lv)) for lh, lv in algos["ln_u"]]
    # exact 64-bit remainder and high product (the __int128 path and its fallback)
    for _ in range(300):
        hv, m = rng.getrandbits(64), rng.randrange(2, 2**32)
        cmds.append(f"r {hv} {m}")
        want.append(f"{hv % m} {(hv * m) >> 64}")
    for x in [1, 2, 3, 2**32 - 1, 2**32, 2**53 - 1, 2**63, 2**64 - 1, rng.getrandbits(64) | 1]:
        cmds.append(f"f {x}")
        want.append(str(x.bit_length() - 1))

    lines = cmds + [c for c, _ in ln_cmds]
    res = subprocess.run([str(tmp_path / "driver.exe")], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    got = res.stdout.splitlines()
    assert len(got) == len(lines)
    for cmd, g, w in zip(cmds, got, want, strict=False):
        assert g == w, cmd[:80]
    for (cmd, w_ln), g in zip(ln_cmds, got[len(cmds):], strict=True):
        assert float.fromhex(g) == w_ln, cmd
