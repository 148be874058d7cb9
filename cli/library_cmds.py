"""Library commands: index, watch, query, similar, status, reindex."""

COMMANDS: list = []
