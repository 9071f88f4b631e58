"""The output formats of ``tracker report``: a leaf module, so the CLI parser needs no renderer."""

FORMATS = ("table", "csv", "json", "markdown", "html", "png")
#: Formats whose output holds only data (other tools parse it): their notes go to stderr.
MACHINE_FORMATS = ("csv", "json", "png")
