"""`python -m detection.plot`: the `detpipe plot` command (detection.cli.plot) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.plot's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.plot import main

    sys.exit(main(prog="python -m detection.plot"))
