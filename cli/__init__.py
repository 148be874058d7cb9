"""Command-line interface of photosearch: parse, call one function, print."""
