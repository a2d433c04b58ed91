"""The container images: linted (no Docker engine runs here) and true to Airbyte's conventions."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    return shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def stages() -> dict[str, str]:
    parts = re.split(r"^FROM .* AS (\S+)$", DOCKERFILE.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_each_connector_image_follows_airbyte_conventions() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    found = stages()
    assert "USER 10001" in found["base"]  # every image runs unprivileged
    for target in ("source-bigcommerce", "destination-brevo"):
        body = found[target]
        assert target in scripts
        assert f'ENTRYPOINT ["{target}"]' in body
        assert f'AIRBYTE_ENTRYPOINT="{target}"' in body
        assert f'io.airbyte.name="tajo/{target}"' in body
        assert 'io.airbyte.version="0.1.0"' in body
    assert 'ENTRYPOINT ["runner"]' in found["runner"]
