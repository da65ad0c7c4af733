"""Entry point for `python -m datasets <command>`.

Hands the arguments to datasets.cli.main and exits with its status.
"""
import sys

from datasets.cli import main

sys.exit(main(prog="python -m datasets"))
