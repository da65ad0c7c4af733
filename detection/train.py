"""`python -m detection.train`: the `detpipe train` command (detection.cli.train) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.train's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.train import main

    sys.exit(main(prog="python -m detection.train"))
