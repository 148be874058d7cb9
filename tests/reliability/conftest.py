"""The reliability suite's fixtures and its end-of-run summary.

Every test of the session (in this folder or elsewhere) that the catalogue names is
counted; the table printed at the end says which kinds of bad input were tried and which
faults injected, and how many photos the audits found lost or duplicated (must be 0).

The counting hooks live on a plugin registered with pytest itself: hooks in a conftest
only see the tests below it, and the catalogue also counts tests in other folders.
"""

from __future__ import annotations

import pytest

from tests.daemon.conftest import tiny_checkpoint  # noqa: F401 - the session's tiny real model
from tests.reliability.ledger import LEDGER

PLUGIN_NAME = "photosearch-reliability-ledger"


class LedgerPlugin:
    @staticmethod
    def pytest_runtest_logreport(report):
        LEDGER.record_outcome(report.nodeid, report.when, report.outcome)

    @staticmethod
    def pytest_terminal_summary(terminalreporter):
        lines = LEDGER.render()
        if lines:
            terminalreporter.section("reliability summary")
            for line in lines:
                terminalreporter.write_line(line)


def pytest_configure(config):
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(LedgerPlugin(), PLUGIN_NAME)


@pytest.fixture(scope="session")
def ledger():
    return LEDGER
