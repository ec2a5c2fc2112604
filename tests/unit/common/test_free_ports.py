"""Free-port picks stay out of the kernel's ephemeral range and never repeat in one process."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from orchestrator.common.stack import net
from orchestrator.common.stack.net import RESERVED_PORTS, ephemeral_range, pick_free_port


def test_picks_are_below_the_ephemeral_range_and_distinct() -> None:
    span = ephemeral_range()
    picks = [pick_free_port() for _ in range(300)]
    assert len(set(picks)) == len(picks)
    assert not RESERVED_PORTS.intersection(picks)
    if span is not None:
        assert all(net.LOWEST_PICK <= port < span[0] for port in picks)


def test_a_listening_port_is_never_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((net.HOST, 0))
        held.listen()
        taken = held.getsockname()[1]
        draws = iter([taken, taken, taken + 1])
        monkeypatch.setattr(random, "randrange", lambda low, high: next(draws))
        monkeypatch.setattr(net, "ephemeral_range", lambda: (taken + 2_000, 60_999))
        monkeypatch.setattr(net, "LOWEST_PICK", taken - 1)
        monkeypatch.setattr(net, "_picked", set())
        assert pick_free_port() == taken + 1


def test_the_range_is_read_from_the_kernel_file(tmp_path: Path) -> None:
    source = tmp_path / "range"
    source.write_text("32768\t60999\n")
    assert ephemeral_range(source) == (32768, 60999)
    source.write_text("garbage")
    assert ephemeral_range(source) is None
    assert ephemeral_range(tmp_path / "missing") is None


def test_without_a_usable_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "ephemeral_range", lambda: None)
    monkeypatch.setattr(net, "_picked", set())
    port = pick_free_port()
    assert port not in RESERVED_PORTS and port in net._picked
