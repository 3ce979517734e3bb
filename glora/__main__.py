import sys

from glora.worker import forward

code = forward(sys.argv[1:])  # None: no worker to run it (the usual case): run it in this process
if code is None:
    from glora.cli import main

    code = main()
raise SystemExit(code)
