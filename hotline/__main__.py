"""``python -m hotline`` runs the CLI."""

from hotline.cli import run

run()
