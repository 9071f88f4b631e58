"""The ``tracker`` command: thin commands that parse, call one service, render and map
errors to exit codes (``main``); what they share is in ``wiring``."""
