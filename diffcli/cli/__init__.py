"""The command line: one Typer module per command, assembled in app.py. No math here."""
