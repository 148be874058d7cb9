"""The reliability ledger: which checks of the catalogue ran, how they ended, and how many
photos the consistency audits looked at (and found lost, doubled or out of step).

One instance (`LEDGER`) lives for the whole test session. `conftest.py` feeds it every
test's outcome and prints it at the end of the run; tests use it through the `ledger`
fixture to audit a library (`assert_consistent`) and to add notes to a check.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from photosearch.indexer.audit import Audit, audit
from tests.reliability.catalogue import CHECKS, KINDS, Check


class Ledger:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}  # test node id -> passed / failed / skipped
        self.notes: dict[str, list[str]] = defaultdict(list)  # check -> notes
        self.totals: Counter = Counter()  # audits, photos, lost, duplicated, stale, index

    # -- fed by the hooks and the tests ----------------------------------------------------
    def record_outcome(self, nodeid: str, when: str, outcome: str) -> None:
        """A phase of a test ended; a failure in any phase makes the test failed."""
        if when == "call" or outcome != "passed":
            if self.outcomes.get(nodeid) != "failed":
                self.outcomes[nodeid] = outcome

    def note(self, what: str, text: str) -> None:
        """Something worth showing beside the check `what` (e.g. "8 kills, 5 mid-save")."""
        self.notes[what].append(text)

    def assert_consistent(self, lib, expect: int | None = None) -> Audit:
        """Audit `lib` against the disk, count it, and fail the test on any difference."""
        result = audit(lib)
        self.count_audit(result.on_disk, len(result.lost), len(result.duplicated),
                         len(result.stale) + len(result.pending), result.index_mismatch)
        assert result.consistent, result.describe()
        if expect is not None:
            assert result.on_disk == result.in_library == expect, result
        return result

    def count_audit(self, photos: int, lost: int = 0, duplicated: int = 0, stale: int = 0,
                    index_mismatch: str | None = None) -> None:
        self.totals.update(audits=1, photos=photos, lost=lost, duplicated=duplicated,
                           stale=stale, index=int(index_mismatch is not None))

    # -- the summary -----------------------------------------------------------------------
    def status(self, check: Check) -> tuple[str, int]:
        """(passed / FAILED / skipped / not run, number of tests) of one catalogue check."""
        ran = [outcome for nodeid, outcome in self.outcomes.items() if check.covers(nodeid)]
        if not ran:
            return "not run", 0
        if "failed" in ran:
            return "FAILED", len(ran)
        if all(outcome == "skipped" for outcome in ran):
            return "skipped", len(ran)
        return "passed", len(ran)

    def render(self) -> list[str]:
        """The summary table, or nothing when no reliability check ran in this session."""
        statuses = {check: self.status(check) for check in CHECKS}
        if all(status == "not run" for status, _ in statuses.values()) and not self.totals:
            return []
        lines = []
        width = min(48, max(len(check.what) for check in CHECKS))
        for kind, title in KINDS.items():
            checks = [check for check in CHECKS if check.kind == kind]
            ran = [c for c in checks if statuses[c][0] != "not run"]
            passed = sum(statuses[c][0] == "passed" for c in checks)
            lines.append(f"{title}: {len(ran)} of {len(checks)} tried, {passed} passed")
            for check in checks:
                status, tests = statuses[check]
                notes = "; ".join(self.notes.get(check.what, []))
                lines.append(f"  {status:<8} {check.what:<{width}}  {tests:>3} test(s)"
                             + (f"  [{notes}]" if notes else ""))
        t = self.totals
        lines.append(
            f"photos audited: {t['photos']} in {t['audits']} audits of library against disk; "
            f"lost {t['lost']}, duplicated {t['duplicated']}, stale {t['stale']}, "
            f"FAISS != SQLite {t['index']}  (all must be 0)"
        )
        return lines


LEDGER = Ledger()
