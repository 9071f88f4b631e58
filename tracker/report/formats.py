"""The output formats of ``tracker report``: a leaf module, so the CLI parser needs no renderer."""

FORMATS = ("table", "csv", "json", "markdown", "html", "png")
