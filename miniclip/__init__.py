"""miniclip package."""
