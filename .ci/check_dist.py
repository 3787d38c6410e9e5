"""Checks of the built distributions, called by .ci/packaging.sh.

    python .ci/check_dist.py sdist DIST.tar.gz     # csrc/, .pyx/.pxd/.pxi, tests/ are in it
    python .ci/check_dist.py wheel DIST.whl        # compiled core + stubs in, no tests/src
    python .ci/check_dist.py auditwheel OUTPUT     # `auditwheel show` names a manylinux policy
    python .ci/check_dist.py installed SRC_ROOT    # ringguard imports from site-packages,
                                                   # compiled, and Cython is not importable
    python .ci/check_dist.py numpy1                # NumPy 1.x is what this venv imports
    python .ci/check_dist.py identifiers FILE      # cibuildwheel's build identifiers are
                                                   # cp310-cp314 + cp314t on the 6 targets

Exits non-zero with a message naming what is wrong.
"""

from __future__ import annotations

import pathlib
import re
import sys
import tarfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def fail(msg: str) -> None:
    print(f"check_dist: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check_sdist(path: str) -> None:
    with tarfile.open(path) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    want = {f"csrc/{p.name}" for p in (ROOT / "csrc").iterdir() if p.is_file()}
    src = ROOT / "src" / "ringguard"
    want |= {f"src/ringguard/{p.name}" for p in src.iterdir()
             if p.suffix in (".pyx", ".pxd", ".pxi", ".pyi")}
    want |= {f"tests/{p.relative_to(ROOT / 'tests').as_posix()}"
             for p in (ROOT / "tests").rglob("*") if p.suffix in (".py", ".json")}
    want |= {"pyproject.toml", "setup.py", "README.md", "CHANGELOG.md", "LICENSE",
             "wheels.yml", "MANIFEST.in", "src/ringguard/py.typed"}
    if not any(n.endswith(".pyx") for n in want) or not any(n.startswith("csrc/") for n in want):
        fail("the source tree has no .pyx or csrc/ files to look for")
    missing = sorted(want - names)
    if missing:
        fail(f"{path}: missing from the sdist: {missing}")
    if "src/ringguard/_core.c" in names:
        fail(f"{path}: ships the generated _core.c (Cython must regenerate it)")
    stray = sorted(n for n in names if n.endswith((".so", ".pyd", ".pyc")))
    if stray:
        fail(f"{path}: build products in the sdist: {stray}")
    print(f"check_dist: sdist ok ({len(names)} files; csrc, Cython sources and tests present)")


def check_wheel(path: str) -> None:
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    core = [n for n in names if re.fullmatch(r"ringguard/_core\.[^/]*(\.so|\.pyd)", n)]
    if not core:
        fail(f"{path}: no compiled ringguard/_core extension in the wheel")
    for need in ("ringguard/__init__.py", "ringguard/py.typed", "ringguard/_core.pyi"):
        if need not in names:
            fail(f"{path}: {need} missing")
    bad = sorted(n for n in names if n.startswith(("tests/", "src/", "csrc/")))
    if bad:
        fail(f"{path}: source-tree files in the wheel: {bad[:5]}")
    print(f"check_dist: wheel ok ({core[0]})")


def check_auditwheel(output_file: str) -> None:
    text = pathlib.Path(output_file).read_text()
    m = re.search(r"(manylinux_\d+_\d+_\w+)", text)
    if not m:
        fail(f"auditwheel show names no manylinux policy:\n{text}")
    print(f"check_dist: auditwheel: the wheel is consistent with {m.group(1)}")


def check_installed(src_root: str) -> None:
    import sysconfig

    import ringguard

    here = pathlib.Path(ringguard.__file__).resolve()
    if here.is_relative_to(pathlib.Path(src_root).resolve()):
        fail(f"ringguard imported from the source tree: {here}")
    site = {pathlib.Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    if not any(here.is_relative_to(p) for p in site):
        fail(f"ringguard not imported from site-packages: {here} (site: {site})")
    if ringguard.BACKEND != "c":
        fail(f"ringguard.BACKEND is {ringguard.BACKEND!r}, the compiled core did not load")
    try:
        import Cython  # noqa: F401
    except ImportError:
        pass
    else:
        fail("Cython is importable: the wheel must be tested without it")
    print(f"check_dist: ringguard {ringguard.__version__} from {here.parent} (core c, no Cython)")


def check_numpy1() -> None:
    import numpy

    if int(numpy.__version__.split(".")[0]) >= 2:
        fail(f"expected NumPy 1.x in this venv, got {numpy.__version__}")
    import ringguard

    if ringguard.BACKEND != "c":
        fail("the compiled core did not load under NumPy 1.x")
    print(f"check_dist: NumPy {numpy.__version__}, compiled core loads")


def check_identifiers(path: str) -> None:
    got = set(pathlib.Path(path).read_text().split())
    pythons = ["cp310", "cp311", "cp312", "cp313", "cp314", "cp314t"]
    targets = ["manylinux_x86_64", "musllinux_x86_64", "manylinux_aarch64", "macosx_x86_64",
               "macosx_arm64", "win_amd64"]
    want = {f"{py}-{t}" for py in pythons for t in targets}
    if got != want:
        fail(f"cibuildwheel builds {sorted(got - want)} too and lacks {sorted(want - got)}")
    print(f"check_dist: cibuildwheel selects the {len(want)} intended wheels")


def main(argv: list[str]) -> None:
    if not argv:
        fail(__doc__ or "usage")
    cmd, args = argv[0], argv[1:]
    if cmd == "sdist":
        check_sdist(args[0])
    elif cmd == "wheel":
        check_wheel(args[0])
    elif cmd == "auditwheel":
        check_auditwheel(args[0])
    elif cmd == "installed":
        check_installed(args[0])
    elif cmd == "numpy1":
        check_numpy1()
    elif cmd == "identifiers":
        check_identifiers(args[0])
    else:
        fail(f"unknown check {cmd!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
