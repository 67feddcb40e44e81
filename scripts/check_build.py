"""Check `sam build`'s output: each function holds only its own package, the layer holds `strata`, every native
binary matches the architecture the template gives its function or layer, and each function plus the layer stays
under Lambda's unzipped limit (250 MB) and under this project's target (every cold start pays for the size)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

LAMBDA_UNZIPPED_LIMIT_MB = 250  # a function and all its layers, unzipped
TARGET_MB = 40  # this project's target for a function and the layer
# e_machine of an ELF header (bytes 18-19, little-endian) -> the architecture it runs on
ELF_MACHINES = {0xB7: "arm64", 0x3E: "x86_64", 0x03: "x86 (32-bit)", 0x28: "arm (32-bit)"}
MACH_O_MAGICS = {b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe"}  # macOS binaries: never loadable
LAYER = "SharedLayer"


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1_048_576


def machine(path: Path) -> str | None:
    """The architecture a native binary is built for ("macOS" for Mach-O), None for anything else."""
    with path.open("rb") as file:
        head = file.read(20)
    if head[:4] in MACH_O_MAGICS:
        return "macOS"
    if head[:4] != b"\x7fELF" or len(head) < 20:
        return None
    code = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return ELF_MACHINES.get(code, f"ELF machine {code:#x}")


def declared_architectures(build: Path, default: str) -> dict[str, str]:
    """Artifact folder -> the architecture the built template declares for it (a function's Architectures, else the
    Globals'; a layer's BuildArchitecture, which `sam build` installs for); `default` where it says nothing literal."""
    template = build / "template.yaml"
    if not template.is_file():
        return {}
    from samtranslator.yaml_helper import yaml_parse

    raw: dict[str, Any] = yaml_parse(template.read_text(encoding="utf-8"))
    global_function = (raw.get("Globals") or {}).get("Function") or {}
    found: dict[str, str] = {}
    for name, resource in (raw.get("Resources") or {}).items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function":
            architectures = properties.get("Architectures", global_function.get("Architectures"))
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            architectures = [(resource.get("Metadata") or {}).get("BuildArchitecture", "x86_64")]
        else:
            continue
        literal = isinstance(architectures, list) and len(architectures) == 1 and isinstance(architectures[0], str)
        found[name] = str(architectures[0]) if literal and architectures else default
    return found


def main(build: Path, default_architecture: str = "arm64", target_mb: float = TARGET_MB) -> int:
    problems: list[str] = []
    layer_dir = build / LAYER
    if not (layer_dir / "python" / "strata" / "__init__.py").is_file():
        problems.append(f"the layer has no python/strata package ({layer_dir})")
    functions = sorted(d for d in build.iterdir() if d.is_dir() and d.name.endswith("Function"))
    if not functions:
        problems.append(f"no function artifacts in {build}")
    layer_mb = size_mb(layer_dir) if layer_dir.is_dir() else 0.0
    limits = f"target {target_mb:g} MB; Lambda's limit {LAMBDA_UNZIPPED_LIMIT_MB} MB"
    print(f"{'artifact':28} {'MB':>8} {'+ layer':>8}  ({limits})")
    print(f"{LAYER:28} {layer_mb:8.2f}")
    for function in functions:
        own = size_mb(function)
        total = own + layer_mb
        print(f"{function.name:28} {own:8.2f} {total:8.2f}")
        # each function holds exactly one project package (its own third-party packages may sit beside it)
        packages = [d.name for d in function.iterdir() if d.name.startswith("strata") and (d / "__init__.py").is_file()]
        if len(packages) != 1:
            problems.append(f"{function.name} holds packages {packages}, not one project package")
        if total > LAMBDA_UNZIPPED_LIMIT_MB:
            problems.append(f"{function.name} + layer is {total:.1f} MB, over Lambda's {LAMBDA_UNZIPPED_LIMIT_MB} MB")
        elif total > target_mb:
            problems.append(f"{function.name} + layer is {total:.1f} MB, over the {target_mb:g} MB target")

    declared = declared_architectures(build, default_architecture)
    for artifact in [layer_dir, *functions]:
        if not artifact.is_dir():
            continue
        expected = declared.get(artifact.name, default_architecture)
        for path in sorted(artifact.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            found = machine(path)
            if found is not None and found != expected:
                problems.append(f"{path.relative_to(build)} is built for {found}; the template says {expected}")

    for problem in problems:
        print(f"FAIL {problem}")
    print("build check:", "ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", default=".aws-sam/build", type=Path)
    parser.add_argument("--architecture", default="arm64", help="where the template names none literally")
    parser.add_argument("--target-mb", type=float, default=TARGET_MB)
    options = parser.parse_args()
    sys.exit(main(options.build, options.architecture, options.target_mb))
