"""Imports every command module so each registers itself on the app.

A command module does ``from ulrl_edge.cli.main import app`` and decorates its function with
``@app.command("name", rich_help_panel=...)``.
"""

from ulrl_edge.cli import (  # noqa: F401
    demo_cmd,
    export_cmd,
    inspect_cmd,
    purify_cmd,
    roundtrip_cmd,
    scan_cmd,
    verify_cmd,
)
