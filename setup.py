"""Extension build for ringguard: the Cython core over the plain-C kernels in csrc/.

Everything else (metadata, extras, tools) lives in pyproject.toml.

Environment:
    RINGGUARD_CYTHON_DEBUG=1   compile with bounds/wraparound checks on and -O0 -g
    RINGGUARD_STRICT_BUILD=1   a failed extension build is an error (set for wheels);
                               otherwise the package installs and falls back to the
                               pure-Python core with a RuntimeWarning at import.
    RINGGUARD_SANITIZE=1       build with -fsanitize=address,undefined (gcc/clang only)
    RINGGUARD_PORTABLE_C=1     define RG_PORTABLE_C: the plain-C fallbacks of the compiler
                               fast paths (what MSVC compiles), see csrc/rg_common.h
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("RINGGUARD_CYTHON_DEBUG") == "1"
STRICT = os.environ.get("RINGGUARD_STRICT_BUILD") == "1"
SANITIZE = os.environ.get("RINGGUARD_SANITIZE") == "1"
PORTABLE = os.environ.get("RINGGUARD_PORTABLE_C") == "1"


class RingguardBuildExt(build_ext):
    """Pick flags by compiler type; never host-specific CPU tuning (wheels run anywhere)."""

    def build_extensions(self) -> None:
        ctype = self.compiler.compiler_type
        for ext in self.extensions:
            if ctype == "msvc":
                ext.extra_compile_args += ["/Od", "/Zi"] if DEBUG else ["/O2"]
            else:
                # -ffp-contract=off: no FMA contraction, so Rendezvous/Jump floating point is
                # bit-identical on every platform (csrc/rg_algos.h)
                ext.extra_compile_args += ["-std=c11", "-fno-strict-aliasing",
                                           "-ffp-contract=off"]
                ext.extra_compile_args += ["-O0", "-g"] if DEBUG else ["-O3"]
                if SANITIZE:
                    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]
                    ext.extra_compile_args += san
                    ext.extra_link_args += san
        try:
            super().build_extensions()
        except Exception as exc:  # pragma: no cover - exercised only on broken toolchains
            if STRICT:
                raise
            print(f"WARNING: ringguard's compiled core failed to build ({exc}); "
                  "the pure-Python core will be used.", file=sys.stderr)


def extensions() -> list[Extension]:
    from Cython.Build import cythonize

    directives = {
        "boundscheck": DEBUG,
        "wraparound": DEBUG,
        "initializedcheck": DEBUG,
    }
    ext = Extension(
        "ringguard._core",
        sources=["src/ringguard/_core.pyx"],
        include_dirs=["csrc"],
        depends=[os.path.join("csrc", f) for f in sorted(os.listdir("csrc"))]
        + [os.path.join("src", "ringguard", f) for f in sorted(os.listdir("src/ringguard"))
           if f.endswith(".pxi")],
        # The extension does not use NumPy's C API (typed memoryviews only): no NumPy at
        # build time, and one wheel imports under NumPy 1.x and 2.x.
        define_macros=[("RG_PORTABLE_C", "1")] if PORTABLE else [],
    )
    return cythonize([ext], compiler_directives=directives, language_level=3)


setup(ext_modules=extensions(), cmdclass={"build_ext": RingguardBuildExt})
