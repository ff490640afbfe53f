"""Replica entry point of the python3-sci template: the python3 replica server, whose chunks have
`data.numpy(dtype, count)`.

server.py, eofaas.py and eofaas_reader.py are the python3 template's own files: in the repository
they are symbolic links to templates/python3/runtime/; rendering a bundle reads them through the
links and writes their content under runtime/, so a bundle is self-contained. Only
eofaas_numpy.py and this file are the python3-sci template's own.

Run from the bundle root as `python3 -B runtime/sci_server.py`; the environment, the protocol and
the exit codes are those of server.py.
"""

import sys

sys.dont_write_bytecode = True  # the bundle is read-only: never try to write __pycache__

import eofaas_numpy  # noqa: E402  (this directory is sys.path[0])
import eofaas_reader  # noqa: E402
import server  # noqa: E402

# server.py builds each invocation's chunk as eofaas_reader.Data(cursor, timeout=...); from here
# on that is the subclass with numpy(). Nothing else changes.
eofaas_reader.Data = eofaas_numpy.Data

if __name__ == "__main__":
    server.main()
