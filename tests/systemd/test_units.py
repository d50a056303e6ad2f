"""The unit files in deploy/: `systemd-analyze verify` is silent and the security exposure is <= 2.0.

verify checks that ExecStart= exists, so every run happens in a private mount namespace with a tmpfs on
/opt holding a placeholder /opt/qsyncd/bin/qsyncd (the units themselves are checked unmodified) and a
tmpfs on /run (verify and security leave /run/systemd/systemd-units-load behind otherwise).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sdharness import require_root, require_tools

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
EXEC_START = "/opt/qsyncd/bin/qsyncd"
MAX_EXPOSURE = 2.0
SETUP = f"""
set -e
[ -d /opt ] || mkdir /opt
mount -t tmpfs tmpfs /opt
mkdir -p {Path(EXEC_START).parent}
printf '#!/bin/sh\\nexit 0\\n' > {EXEC_START}
chmod 755 {EXEC_START}
mount -t tmpfs tmpfs /run
cd "$UNITS"
exec "$@"
"""

# (unit to check, drop-ins to place beside it as <unit>.d/<name>)
VARIANTS = {
    "qsyncd.service": ("qsyncd.service", {}),
    "qsyncd@.service": ("qsyncd@.service", {}),
    "qsyncd@example.service": ("qsyncd@example.service", {}),
    "qsyncd.service+delete": ("qsyncd.service", {"delete.conf": "qsyncd-delete.conf"}),
    "qsyncd@example.service+delete": ("qsyncd@example.service", {"delete.conf": "qsyncd-delete.conf"}),
}


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """A copy of deploy/ to place drop-ins in."""
    require_root()
    require_tools("systemd-analyze", "unshare")
    for unit in DEPLOY.glob("*.service"):
        shutil.copy(unit, tmp_path / unit.name)
    return tmp_path


def analyze(units: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``systemd-analyze args`` in the private namespace described above, in ``units``."""
    return subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "env",
            f"UNITS={units}",
            "sh",
            "-c",
            SETUP,
            "sh",
            "systemd-analyze",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def place_dropins(units: Path, unit: str, dropins: dict[str, str]) -> None:
    template = re.sub(r"@[^.]+\.", "@.", unit)  # instance drop-ins may live in the template's .d too
    for name, source in dropins.items():
        target = units / f"{template}.d" / name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(DEPLOY / source, target)


def test_deploy_has_the_units():
    """deploy/ ships the service, the template, the delete drop-in and the sysusers file."""
    names = {p.name for p in DEPLOY.iterdir()}
    assert {"qsyncd.service", "qsyncd@.service", "qsyncd-delete.conf", "qsyncd.sysusers.conf"} <= names


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_verify_prints_nothing(units: Path, variant: str):
    """systemd-analyze verify --man=no exits 0 and prints nothing (warnings count as failures)."""
    unit, dropins = VARIANTS[variant]
    place_dropins(units, unit, dropins)
    proc = analyze(units, "verify", "--man=no", f"./{unit}")
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


@pytest.mark.parametrize("unit", ["qsyncd.service", "qsyncd@example.service"])
def test_verify_check_catches_a_typo(units: Path, unit: str):
    """The verify check itself reports a misspelt key in a drop-in (guards against a silent check)."""
    dropin_dir = units / (re.sub(r"@[^.]+\.", "@.", unit) + ".d")
    dropin_dir.mkdir()
    (dropin_dir / "typo.conf").write_text("[Service]\nProtectSystm=strict\n")
    proc = analyze(units, "verify", "--man=no", f"./{unit}")
    assert "Unknown key 'ProtectSystm'" in proc.stdout + proc.stderr


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_security_exposure(units: Path, variant: str, capsys: pytest.CaptureFixture[str]):
    """systemd-analyze security --offline=yes rates the unit at most 2.0 (the score is printed)."""
    unit, dropins = VARIANTS[variant]
    place_dropins(units, unit, dropins)
    proc = analyze(units, "security", "--offline=yes", f"./{unit}")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    score = float(match.group(1))
    with capsys.disabled():
        print(f"\n[security] {variant}: exposure {score}")
    assert score <= MAX_EXPOSURE, proc.stdout


def test_unit_contract():
    """The shipped unit keeps the properties the daemon and the docs rely on."""
    text = (DEPLOY / "qsyncd.service").read_text()
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={EXEC_START} run --config /etc/qsyncd/qsyncd.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=30s",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "TimeoutStopSec=60s",
        "StateDirectory=qsyncd",
        "StateDirectoryMode=0700",
        "LoadCredential=qsyncd-secret-key:/etc/qsyncd/secret-key",
        "DynamicUser=yes",
        "MemoryDenyWriteExecute=yes",
    ]:
        assert line in text.splitlines(), line
    template = (DEPLOY / "qsyncd@.service").read_text().splitlines()
    assert f"ExecStart={EXEC_START} run --config /etc/qsyncd/%i.toml" in template
    assert "StateDirectory=qsyncd/%i" in template
    assert "LoadCredential=qsyncd-secret-key:/etc/qsyncd/%i.secret-key" in template
