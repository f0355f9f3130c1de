"""The composition root: the ``cronfleet`` command, each role's process, and
the local cluster (``cronfleet up``) with its own Postgres and etcd.

This is the only package that imports every role; the shared kernel
(``cronfleet/``) imports none.
"""
