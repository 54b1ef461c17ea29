"""python -m facl.selftest: passes on this device, and fails (non-zero exit) when it
cannot run its checks."""
import os
import subprocess
import sys


def run_selftest(**env):
    return subprocess.run([sys.executable, "-m", "facl.selftest"], capture_output=True,
                          text=True, env=dict(os.environ, **env), timeout=900)


def test_selftest_passes():
    r = run_selftest()
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("PASS ") == 10 and "FAIL" not in r.stdout
    assert "0 of 10 checks failed" in r.stdout


def test_selftest_fails_without_a_device():
    r = run_selftest(FACL_DEVICE="no-such-device-anywhere")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "FACL_ERROR_NO_DEVICE" in r.stdout
