"""Subcommands of feature modules; each module has ``add_commands(subparsers)``."""
