"""The cron line and its installer."""

import re
import subprocess

from conftest import ROOT


def test_crontab_line_runs_fullprocess_every_10_minutes_with_absolute_paths(tmp_path):
    lines = [line for line in (ROOT / "crontab.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1
    installed = lines[0].replace("@PROJECT_DIR@", str(tmp_path))
    schedule = "*/10 * * * * "
    assert installed.startswith(schedule)
    command = installed[len(schedule) :]
    assert command.startswith(f"{tmp_path}/.venv/bin/python {tmp_path}/fullprocess.py --config {tmp_path}/")
    assert re.search(r">> \S+/logs/cron\.log 2>&1$", command)


def test_make_cron_install_fills_in_this_checkout(tmp_path):
    # Dry run: shows the commands make would run, without touching the real crontab.
    result = subprocess.run(["make", "-n", "-C", str(ROOT), "cron-install"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"s#@PROJECT_DIR@#{ROOT}#g" in result.stdout
    assert "crontab -" in result.stdout
