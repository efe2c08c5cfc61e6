"""Progress: a bar on a terminal, log lines elsewhere, never carriage returns in a log."""

from __future__ import annotations

import io
import logging

import pytest

from wattfleet.core.progress import LogProgress, progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_gives_log_lines_every_ten_percent(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="wattfleet.core.progress"):
        bar = progress(50, "ingest embedded", "h", stream=stream, every_seconds=3600)
        assert isinstance(bar, LogProgress)
        for _ in range(50):
            bar.update(1)
        bar.close()
        bar.close()  # closing twice logs once
    assert stream.getvalue() == ""  # nothing written behind logging's back
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10
    assert lines[0].startswith("ingest embedded: 5/50 h (10%)")
    assert lines[-1].startswith("ingest embedded: 50/50 h (100%)")
    assert not any("\r" in line for line in lines)


def test_log_lines_every_so_many_seconds(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    with caplog.at_level(logging.INFO, logger="wattfleet.core.progress"):
        bar = LogProgress(1000, "scrape", "step", every_seconds=10, every_percent=100, clock=lambda: now[0])
        for _ in range(30):
            now[0] += 1
            bar.update(1)
        bar.close()
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == [
        "scrape: 10/1000 step (1%)", "scrape: 20/1000 step (2%)", "scrape: 30/1000 step (3%)"]


def test_disabled_shows_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        bar = progress(3, "quiet", enabled=False, stream=Tty())
        bar.update(3)
        bar.close()
    assert caplog.records == []


def test_a_terminal_gets_a_tqdm_bar() -> None:
    pytest.importorskip("tqdm")
    stream = Tty()
    bar = progress(4, "ingest", "h", stream=stream)
    assert not isinstance(bar, LogProgress)
    bar.update(4)
    bar.close()
    assert "4/4" in stream.getvalue()
