"""Budgets and alerts: pure budget and alert rules (``budgets``, ``rules``, ``channels``),
delivery through the channels (``notify``, an edge), and ``service``, which gathers spend
from the store, evaluates the rules and delivers each alert once through the ledger."""
