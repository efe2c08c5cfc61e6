"""Telling a load-balanced Service from one engine process, so it can be refused.

An engine URL that is really a Service over several replicas answers each
scrape from whichever replica the balancer picks: counters go up and down,
and the process start time alternates. No counting rule can make one series
out of that, so the endpoint is refused (engine down, reason
``replicated_endpoint``) and the operator is told to list each engine
process (its pod IP or per-replica URL) as an entry of its own. The
evidence: a start time that changes to one before the previous scrape (a
restarted process starts after the old one last answered; engines run on this
node, so both clocks are the same), or repeated decreases and restarts within
a few scrapes (a real engine restarts in minutes, not every other scrape).
The refusal holds until the exporter restarts with a corrected config.
"""

from __future__ import annotations

from collections import deque

# Scrapes looked back on, and how many of them may show a decrease or restart before the endpoint is refused.
WINDOW_SCRAPES = 10
MAX_SUSPECT_SCRAPES = 2
# Process start times are rounded (boot time to the second): a restart may look this much older than it is.
START_TIME_SLACK_SECONDS = 5.0


class ReplicaDetector:
    """Fed one scrape at a time; :attr:`evidence` says why the endpoint is replicated (None while it is not)."""

    def __init__(self, window: int = WINDOW_SCRAPES, max_suspect: int = MAX_SUSPECT_SCRAPES) -> None:
        self.max_suspect = max_suspect
        self.evidence: str | None = None
        self._suspect: deque[bool] = deque(maxlen=window)
        self._start_time: float | None = None

    @property
    def replicated(self) -> bool:
        return self.evidence is not None

    def start_time_changed_to_an_older_process(self, start_time: float | None,
                                               previous_scrape_wall: float | None) -> bool:
        """True (and the endpoint refused) when the page's start time changed to a process that was already
        running at the previous scrape (``previous_scrape_wall``, Unix time), or to an earlier one."""
        last, self._start_time = self._start_time, start_time if start_time is not None else self._start_time
        if start_time is None or last is None or start_time == last:
            return False
        if start_time < last:
            self.evidence = (f"process start time went back from {last:.0f} to {start_time:.0f}: "
                             f"two processes answer this URL")
        elif previous_scrape_wall is not None and start_time < previous_scrape_wall - START_TIME_SLACK_SECONDS:
            self.evidence = (f"process start time changed from {last:.0f} to {start_time:.0f}, a process "
                             f"already running at the previous scrape ({previous_scrape_wall:.0f}), not a restart")
        return self.replicated

    def scrape(self, suspect: bool) -> bool:
        """Record one scrape (``suspect``: a counter went down, or restarted with no start time to tell);
        True once such scrapes repeat within the window."""
        self._suspect.append(suspect)
        count = sum(self._suspect)
        if self.evidence is None and count > self.max_suspect:
            self.evidence = (f"counters went down or restarted in {count} of the last {len(self._suspect)} "
                             f"scrapes")
        return self.replicated
