"""The library-CLI tests share the daemon tests' fixtures (one tiny checkpoint per session)."""

from tests.daemon.conftest import other_checkpoint, tiny_checkpoint  # noqa: F401 - fixtures
