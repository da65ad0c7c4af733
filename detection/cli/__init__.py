"""The commands, one module each: parse the arguments, call the library, print. `detpipe NAME` runs NAME's `main`.

`python -m detection.NAME` runs the same through the entry points beside this package (detection/train.py, ...).
"""
