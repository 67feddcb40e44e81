"""scripts/check_build.py on fake `sam build` trees: wrong-architecture native libraries, sizes, packages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]

BUILT_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.11
    Architectures: [arm64]
    Layers: [!Ref SharedLayer]
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: SharedLayer, CompatibleArchitectures: [arm64]}
    Metadata: {BuildMethod: makefile, BuildArchitecture: arm64}
  DataFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: DataFunction, Handler: strata_data.handler.handler}
  LegacyFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: LegacyFunction, Handler: strata_legacy.handler.handler, Architectures: [x86_64]}
"""


@pytest.fixture(scope="module")
def check_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_build", ROOT / "scripts" / "check_build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_build"] = module
    spec.loader.exec_module(module)
    return module


def elf(machine: int) -> bytes:
    """The first bytes of a 64-bit little-endian ELF shared object for `machine` (0xB7 aarch64, 0x3E x86-64)."""
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4], header[5], header[6] = 2, 1, 1  # 64-bit, little-endian, version 1
    header[16:18] = (3).to_bytes(2, "little")  # ET_DYN
    header[18:20] = machine.to_bytes(2, "little")
    return bytes(header)


AARCH64, X86_64 = elf(0xB7), elf(0x3E)


def write(path: Path, content: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def sparse(path: Path, megabytes: float) -> None:
    """A file of `megabytes` that takes no disk space."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        file.truncate(int(megabytes * 1_048_576))


def good_build(root: Path) -> Path:
    build = root / "build"
    write(build / "template.yaml", BUILT_TEMPLATE.encode())
    layer = build / "SharedLayer" / "python"
    write(layer / "strata" / "__init__.py")
    write(layer / "pydantic_core" / "_pydantic_core.cpython-311-aarch64-linux-gnu.so", AARCH64)
    write(layer / "asyncpg" / "protocol" / "protocol.cpython-311-aarch64-linux-gnu.so", AARCH64)
    write(build / "DataFunction" / "strata_data" / "__init__.py")
    write(build / "LegacyFunction" / "strata_legacy" / "__init__.py")
    write(build / "LegacyFunction" / "cffi" / "_cffi_backend.cpython-311-x86_64-linux-gnu.so", X86_64)
    return build


def test_a_build_matching_its_template_passes(
    check_build: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_build.main(good_build(tmp_path)) == 0

    out = capsys.readouterr().out
    assert "build check: ok" in out
    for artifact in ("SharedLayer", "DataFunction", "LegacyFunction"):
        assert artifact in out


@pytest.mark.parametrize(
    "library",
    [
        "SharedLayer/python/pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so",
        "SharedLayer/python/asyncpg/protocol/protocol.cpython-311-x86_64-linux-gnu.so",
        "DataFunction/cryptography/hazmat/bindings/_rust.abi3.so",
        # a native library without the .so suffix (a bundled binary) is checked as well
        "SharedLayer/python/asyncpg.libs/libpq-3f2b1c.so.5.16",
        "DataFunction/bin/redis-server",
    ],
)
def test_an_x86_64_native_library_in_an_arm64_artifact_fails(
    check_build: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], library: str
) -> None:
    # GIVEN an arm64 build where pip slipped in an x86-64 wheel (what happens without BuildArchitecture: arm64)
    build = good_build(tmp_path)
    write(build / library, X86_64)

    # WHEN checked THEN it fails, naming the file and both architectures
    assert check_build.main(build) == 1
    out = capsys.readouterr().out
    assert f"FAIL {library} is built for x86_64; the template says arm64" in out


def test_an_arm64_library_in_a_function_the_template_builds_for_x86_64_fails(
    check_build: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = good_build(tmp_path)
    write(build / "LegacyFunction" / "rpds" / "rpds.cpython-311-aarch64-linux-gnu.so", AARCH64)

    assert check_build.main(build) == 1
    assert "LegacyFunction/rpds/rpds.cpython-311-aarch64-linux-gnu.so is built for arm64; the template says x86_64" in (
        capsys.readouterr().out
    )


def test_a_macos_wheel_fails(check_build: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = good_build(tmp_path)
    write(build / "SharedLayer/python/uvloop/loop.cpython-311-darwin.so", b"\xcf\xfa\xed\xfe" + bytes(28))

    assert check_build.main(build) == 1
    assert "is built for macOS" in capsys.readouterr().out


def test_a_function_and_layer_over_the_target_fail(
    check_build: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = good_build(tmp_path)
    sparse(build / "SharedLayer" / "python" / "big" / "data.bin", 30)
    sparse(build / "DataFunction" / "cedarpy" / "_internal.bin", 11)

    assert check_build.main(build) == 1
    out = capsys.readouterr().out
    assert "FAIL DataFunction + layer is 41.0 MB, over the 40 MB target" in out
    assert "LegacyFunction" not in out.split("FAIL", 1)[1]  # 30 MB with the layer: within the target


def test_a_function_over_lambdas_limit_fails_as_such(
    check_build: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = good_build(tmp_path)
    sparse(build / "DataFunction" / "model.bin", 251)

    assert check_build.main(build) == 1
    assert "DataFunction + layer is 251.0 MB, over Lambda's 250 MB" in capsys.readouterr().out


def test_a_function_with_another_functions_package_fails(
    check_build: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = good_build(tmp_path)
    write(build / "DataFunction" / "strata_runtime" / "__init__.py")

    assert check_build.main(build) == 1
    assert "DataFunction holds packages" in capsys.readouterr().out


def test_a_layer_without_strata_fails(
    check_build: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = good_build(tmp_path)
    (build / "SharedLayer" / "python" / "strata" / "__init__.py").unlink()

    assert check_build.main(build) == 1
    assert "the layer has no python/strata package" in capsys.readouterr().out
