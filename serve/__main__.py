"""`python -m serve`: the `detpipe serve` command (serve.cli) run as a module.

An entry point only: the arguments, the work and the exit status are serve.cli's.
"""
import sys

if __name__ == "__main__":
    from serve.cli import main

    sys.exit(main(prog="python -m serve"))
