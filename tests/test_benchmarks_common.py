"""Shared benchmark helpers (`benchmarks/common.py`): a peer code's failure is a result."""

import importlib.util
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"


@pytest.fixture(scope="module")
def common():
    spec = importlib.util.spec_from_file_location("benchmarks_common", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peer_failure_is_recorded_as_a_string(common, capsys):
    def matcher():
        raise RuntimeError("Could not find point within tolerance")

    results = {}
    out = common.peer_call(results, "xtrack_match_status", matcher, failure="did not converge")
    assert out is None
    assert results == {"xtrack_match_status":
                       "did not converge: RuntimeError: Could not find point within tolerance"}
    assert "did not converge" in capsys.readouterr().out


def test_peer_success_returns_its_value_and_keeps_an_earlier_failure(common):
    results = {}
    assert common.peer_call(results, "xtrack_status", lambda a, b=0: a + b, 2, b=3) == 5
    assert results == {"xtrack_status": "ok"}
    common.peer_call(results, "xtrack_status", lambda: 1 / 0)
    assert results["xtrack_status"].startswith("failed: ZeroDivisionError")
    common.peer_call(results, "xtrack_status", lambda: None)
    assert results["xtrack_status"].startswith("failed: ZeroDivisionError")


def test_interrupts_are_not_swallowed(common):
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        common.peer_call({}, "k", interrupted)
