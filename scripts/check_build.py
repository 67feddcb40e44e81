"""Check `sam build`'s output: each function holds only its own package, the layer holds `strata`, every native
library matches the template's architecture, and each function plus the layer stays far below Lambda's limit."""

from __future__ import annotations

import sys
from pathlib import Path

ELF_MACHINE = {b"\xb7\x00": "aarch64", b"\x3e\x00": "x86_64"}
LAMBDA_UNZIPPED_LIMIT_MB = 250
LAYER_TARGET_MB = 30  # every function pays for the layer: keep it lean
TARGET_MB = 50  # function + layer (L09 carries cryptography for JWTs, ~15 MB, loaded only when a JWT arrives)


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1_048_576


def machine(path: Path) -> str | None:
    head = path.read_bytes()[:20]
    return ELF_MACHINE.get(head[18:20], "unknown") if head[:4] == b"\x7fELF" else None


def main(build: Path, architecture: str = "aarch64") -> int:
    problems: list[str] = []
    layer = build / "SharedLayer" / "python"
    if not (layer / "strata" / "__init__.py").is_file():
        problems.append("the layer has no python/strata package")
    functions = sorted(d for d in build.iterdir() if d.is_dir() and d.name.endswith("Function"))
    # each function holds exactly one project package (its own third-party packages may sit beside it)
    packages = {
        f.name: [d.name for d in f.iterdir() if d.name.startswith("strata") and (d / "__init__.py").is_file()]
        for f in functions
    }
    layer_mb = size_mb(build / "SharedLayer")
    print(f"{'artifact':28} {'MB':>8}  (function + layer; Lambda's limit {LAMBDA_UNZIPPED_LIMIT_MB} MB)")
    print(f"{'SharedLayer':28} {layer_mb:8.1f}")
    if layer_mb > LAYER_TARGET_MB:
        problems.append(f"the layer is {layer_mb:.1f} MB (target under {LAYER_TARGET_MB} MB)")
    for function in functions:
        total = size_mb(function) + layer_mb
        print(f"{function.name:28} {size_mb(function):8.2f}  {total:6.1f} total")
        if len(packages[function.name]) != 1:
            problems.append(f"{function.name} holds packages {packages[function.name]}, not one project package")
        if total > TARGET_MB:
            problems.append(f"{function.name} + layer is {total:.1f} MB (target under {TARGET_MB} MB)")
    for library in build.rglob("*.so*"):
        found = machine(library) if library.is_file() else None
        if found and found != architecture:
            problems.append(f"{library.relative_to(build)} is {found}, the template says {architecture}")
    for problem in problems:
        print(f"FAIL {problem}")
    print("build check:", "ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")))
