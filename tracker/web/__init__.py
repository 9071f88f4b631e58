"""``tracker serve``: the read-only dashboard and its JSON API (FastAPI), over the same
query and rendering layers as the CLI."""
