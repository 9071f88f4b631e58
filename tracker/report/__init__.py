"""Reports: the views (showback, top, waste, trend), the ``report --by`` rows, the FOCUS
export and the monthly showback, and the one rendering layer they all use (``table`` ->
``render`` for table, CSV, JSON, Markdown, HTML and charts)."""
