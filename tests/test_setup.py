"""scripts/setup is honest: it names what it could not install, waits out a held apt lock,
installs without warnings, and the dependencies are bounded so the CLI renders the same for everyone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SYSTEM_PACKAGES = ROOT / "scripts" / "system-packages"

# A stand-in apt-get: fails with the real "lock held" message while $LOCK_FILE
# counts down, refuses the packages named in $UNAVAILABLE, logs every call.
FAKE_APT = r"""#!/bin/bash
echo "$*" >> "$CALLS"
n=$(cat "$LOCK_FILE" 2>/dev/null || echo 0)
if [ "$n" -gt 0 ]; then
  echo $((n - 1)) > "$LOCK_FILE"
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)" >&2
  exit 100
fi
for p in $UNAVAILABLE; do
  for a in "$@"; do [ "$a" = "$p" ] && { echo "E: Unable to locate package $p" >&2; exit 100; }; done
done
exit 0
"""


def _sandbox(tmp_path: Path, *, lock_count: int, unavailable: str) -> tuple[dict[str, str], Path]:
    """A PATH with only basic tools and the fake apt-get: no redis-server, chromium or wrk."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env", "grep", "sleep", "id", "cat", "tail", "dirname"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run this test"
        (bin_dir / tool).symlink_to(found)
    apt = bin_dir / "apt-get"
    apt.write_text(FAKE_APT)
    apt.chmod(0o755)
    calls = tmp_path / "calls"
    (tmp_path / "lock").write_text(str(lock_count))
    env = {
        "PATH": str(bin_dir), "CALLS": str(calls), "LOCK_FILE": str(tmp_path / "lock"),
        "UNAVAILABLE": unavailable, "APT_RETRY_SECONDS": "0", "APT_LOG": str(tmp_path / "apt.log"),
        "HOME": str(tmp_path),
    }
    return env, calls


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bash = env["PATH"] + "/bash"
    return subprocess.run([bash, str(SYSTEM_PACKAGES)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_a_package_the_tests_need_that_cannot_be_installed_fails_setup_naming_it(tmp_path: Path) -> None:
    env, _ = _sandbox(tmp_path, lock_count=0, unavailable="chromium")
    done = _run(env)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("setup: could not install chromium")
    assert "redis-server" not in last  # it was installed: only the missing one is named


def test_setup_waits_while_another_process_holds_the_apt_lock(tmp_path: Path) -> None:
    env, calls = _sandbox(tmp_path, lock_count=3, unavailable="")
    done = _run(env)
    assert done.returncode == 0, done.stderr
    assert "retrying" in done.stderr
    installs = [line for line in calls.read_text().splitlines() if " install " in f" {line} "]
    assert {line.split()[-1] for line in installs} == {"redis-server", "chromium", "wrk"}


def test_only_the_benchmark_tool_missing_is_a_note_not_a_failure(tmp_path: Path) -> None:
    env, _ = _sandbox(tmp_path, lock_count=0, unavailable="wrk")
    done = _run(env)
    assert done.returncode == 0
    assert "could not install wrk (only bench/run needs it)" in done.stderr


def test_a_lock_that_is_never_released_gives_up_and_names_the_package(tmp_path: Path) -> None:
    env, _ = _sandbox(tmp_path, lock_count=10_000, unavailable="")
    env["APT_LOCK_WAIT"] = "3"
    done = _run(env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("setup: could not install redis-server chromium")


def test_every_dependency_has_an_upper_bound_and_the_license_is_an_spdx_string() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    deps = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    unbounded = [d for d in deps if "<" not in d and not d.startswith("types-")]
    assert unbounded == []


@pytest.mark.slow
def test_installing_the_project_prints_no_warnings(tmp_path: Path) -> None:
    # Builds the project's metadata exactly as `pip install -e .` does (isolated build backend).
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
         "-e", str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    # This machine's pip config names local mirrors that may be absent: pip's note about that is not ours.
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if line.strip() and not re.match(r"WARNING: Location '.*' is ignored", line)]
    assert not [line for line in lines if re.search(r"warning|deprecat", line, re.IGNORECASE)], "\n".join(lines)
