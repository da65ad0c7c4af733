"""`python -m detection.export`: the `detpipe export` command (detection.cli.export) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.export's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.export import main

    sys.exit(main(prog="python -m detection.export"))
