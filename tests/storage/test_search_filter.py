"""SearchFilter: date texts, inclusive ranges, and filtered searches that still return k hits."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from photosearch.storage import Library, PhotoRecord
from photosearch.storage.search_filter import FilterError, SearchFilter


@pytest.mark.parametrize(("date_from", "date_to", "start", "end"), [
    ("2023", "2023", datetime(2023, 1, 1), datetime(2024, 1, 1)),
    ("2023-06", "2023-06", datetime(2023, 6, 1), datetime(2023, 7, 1)),
    ("2023-12", "2023-12", datetime(2023, 12, 1), datetime(2024, 1, 1)),
    ("2023-6-4", "2024-02-29", datetime(2023, 6, 4), datetime(2024, 3, 1)),
    ("2023-06-14", "2023-06-14", datetime(2023, 6, 14), datetime(2023, 6, 15)),
])
def test_dates_are_inclusive_periods(date_from, date_to, start, end):
    where = SearchFilter(date_from=date_from, date_to=date_to)
    assert (where.taken_from, where.taken_before) == (start, end)


@pytest.mark.parametrize("text", ["2023-13", "2023-02-30", "June", "23-06", "2023/06/14", "2023-06-14T10:00", "", "1066"])
def test_unreadable_dates_say_what_is_expected(text):
    with pytest.raises(FilterError, match="--from"):
        SearchFilter(date_from=text)


def test_a_range_the_wrong_way_round_is_refused():
    with pytest.raises(FilterError, match="swap"):
        SearchFilter(date_from="2024", date_to="2023-12")
    SearchFilter(date_from="2023-12-31", date_to="2023-12")  # the last day of the month: fine


def test_it_travels_as_json_fields():
    where = SearchFilter(folder="/p", date_from="2023-6", tag=" Dog ")
    assert where.to_request() == {"under": "/p", "from": "2023-06", "to": None, "tag": "dog"}
    assert SearchFilter.from_request(where.to_request()) == where
    assert SearchFilter.from_request({}).is_empty
    with pytest.raises(FilterError):
        SearchFilter.from_request({"from": 2023})


def library_with_dates(count: int = 30):
    """`count` photos, one a month from January 2022, every one a perfect match but by degree."""
    lib = Library.in_memory()
    ids = lib.add_photos([PhotoRecord(path=f"/p/{'a' if i % 2 else 'b'}/{i:02d}.jpg", size=1, mtime=0.0,
                                      fingerprint=str(i), taken_at=datetime(2022 + i // 12, i % 12 + 1, 15, 12))
                          for i in range(count)])
    rng = np.random.default_rng(0)
    lib.set_vectors({pid: rng.normal(size=8).astype(np.float32) for pid in ids})
    return lib


def test_filtered_search_returns_k_hits_whenever_k_match():
    lib = library_with_dates()
    query = np.ones(8, dtype=np.float32)
    best = lib.search(query, 30)
    where = SearchFilter(folder="/p/a", date_from="2023-01", date_to="2023-12")  # 6 photos of the 30
    hits = lib.search(query, 6, where=where)
    assert len(hits) == 6
    assert all(h.photo.path.startswith("/p/a/") and h.photo.taken_at.year == 2023 for h in hits)
    assert [h.photo.id for h in hits] == [h.photo.id for h in best if h.photo in [x.photo for x in hits]]
    assert len(lib.search(query, 10, where=where)) == 6
    assert lib.count_searchable(where) == 6


def test_browse_is_newest_first_one_page_at_a_time():
    lib = library_with_dates()
    first, second = lib.browse(SearchFilter(), 0, 20), lib.browse(SearchFilter(), 20, 20)
    taken = [r.taken_at for r in first + second]
    assert len(first) == 20 and len(second) == 10 and taken == sorted(taken, reverse=True)
    june = lib.browse(SearchFilter(date_from="2022-06", date_to="2022-06"), 0, 10)
    assert [r.taken_at for r in june] == [datetime(2022, 6, 15, 12)]
