"""Performance benchmarks of photosearch: plain scripts, not tests (pytest never collects them).

Run them all and print one table (see benchmarks/README.md):

    .venv/bin/python -m benchmarks.run            # the full run (tens of minutes the first time)
    .venv/bin/python -m benchmarks.run --quick    # a smoke run on tiny inputs (seconds)
"""
