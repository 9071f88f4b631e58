"""Reconciliation: pure comparison rules (``rules``), the CUR 2.0 / FOCUS file readers
(``bill_files``), and ``service``, which gathers the store and the bill and compares them."""
