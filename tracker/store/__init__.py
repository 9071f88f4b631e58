"""The database edge: the connection (``engine``), the tables (``schema``), the repositories
(``database`` for jobs and watermarks, ``bills``, ``estimates``, ``ops``), the one query
layer (``query``) and the migrations (``migrate``, ``migrations/``)."""
