"""``jacc-twin pvs``, ``jacc-twin devices`` and ``jacc-twin serve`` (a real process: served,
read by a client, stopped by SIGTERM, exit status 0)."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from jacc_twin.cli import main


def test_pvs_lists_every_pv(capsys):
    assert main(["pvs", "--prefix", "X:"]) == 0
    lines = capsys.readouterr().out.splitlines()
    sp = next(line for line in lines if line.startswith("X:HCA1R:SETTING "))
    assert sp.split() == ["X:HCA1R:SETTING", "double", "A", "read-write"]
    assert next(line for line in lines if line.startswith("X:ORBIT:X ")).split()[1:] == ["double[21]", "m", "read-only"]
    assert any(line.startswith("X:TUNE:QX ") for line in lines)
    assert any(line.startswith("X:DEBUG:") for line in lines)


def test_devices_table(capsys):
    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["ACNET", "PROPERTY", "PV"]
    row = next(line for line in lines if "IOTA:HCA1R:SETTING" in line).split()
    assert row == ["N:IHA1R", "SETTING", "IOTA:HCA1R:SETTING", "ca1r:1", "hk_sqa1r", "A", "[-10,", "10]", "read-write"]


def test_serve_until_sigterm():
    pytest.importorskip("caproto")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, EPICS_CA_ADDR_LIST="127.0.0.1", EPICS_CA_AUTO_ADDR_LIST="NO",
               EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_SERVER_PORT=str(port),
               PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-c", "from jacc_twin.cli import main; raise SystemExit(main())", "serve",
           "--prefix", "CLI:", "--no-debug", "--duration", "120"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not any("ready:" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "serve exited before it was ready:\n" + "".join(lines)
            lines.append(line)
        from caproto.sync.client import read

        old = dict(os.environ)
        os.environ.update(env)
        try:
            assert read("CLI:HCA1R:SETTING", timeout=5.0).data[0] == 0.0
        finally:
            os.environ.clear()
            os.environ.update(old)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # the process this test started
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, out
    assert time.monotonic() - t0 < 15
    assert "received SIGTERM: shutting down" in out and "stopped after" in out
