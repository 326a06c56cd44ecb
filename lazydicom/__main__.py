"""``python -m lazydicom`` runs the command line."""

from .cli import run

run()
