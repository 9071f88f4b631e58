"""Alembic migrations of the tracker's schema; run them with ``tracker db upgrade``.

Shipped inside the package (script location ``tracker.store:migrations``) so an installed
tracker can upgrade its own database. See :mod:`tracker.store.migrate`.
"""
