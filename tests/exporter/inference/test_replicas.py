"""ReplicaDetector: what tells a load-balanced Service from one engine process."""

from __future__ import annotations

from wattfleet.exporter.inference.replicas import ReplicaDetector


def test_a_start_time_going_back_is_two_processes() -> None:
    d = ReplicaDetector()
    assert not d.start_time_changed_to_an_older_process(2000.0, None)
    assert d.start_time_changed_to_an_older_process(1000.0, 5000.0)
    assert d.evidence is not None and "went back" in d.evidence


def test_a_start_time_before_the_previous_scrape_is_not_a_restart() -> None:
    d = ReplicaDetector()
    d.start_time_changed_to_an_older_process(1000.0, None)
    assert not d.start_time_changed_to_an_older_process(1000.0, 5000.0)   # unchanged
    assert not d.start_time_changed_to_an_older_process(5002.0, 5000.0)   # restarted after the last scrape
    assert d.start_time_changed_to_an_older_process(3000.0, 6000.0) is True  # ...but this one was running already
    assert d.replicated


def test_repeated_decreases_within_the_window_refuse_the_endpoint() -> None:
    d = ReplicaDetector(window=10, max_suspect=2)
    for suspect in (True, False, False, False, False, False, False, False, False, False, True):
        assert not d.scrape(suspect)  # the first one left the window
    assert d.scrape(True) is False
    assert d.scrape(True) is True
    assert d.evidence is not None and "3 of the last 10" in d.evidence
