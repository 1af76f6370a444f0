"""Raw dataset readers: each yields one validated face at a time, never the whole set."""
