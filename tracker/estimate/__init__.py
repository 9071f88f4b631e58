"""Estimates: pure estimate and matching rules (``rules``), pricing and recording through
the store (``service``), and the launch-script API (``api``)."""
