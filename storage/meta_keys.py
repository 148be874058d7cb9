"""Names of the library's reserved ``meta`` rows (a leaf: no SQLAlchemy, for the light reader)."""

SCHEMA_VERSION_KEY = "schema_version"
VECTOR_DIM = "vector_dim"  # D of every stored vector; unset while there are none
GENERATION = "vectors_generation"  # bumped by every commit that changes vectors
RESERVED = frozenset({SCHEMA_VERSION_KEY, VECTOR_DIM, GENERATION})
