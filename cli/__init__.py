"""The ``cronfleet`` command for people: readable tables, follow and watch,
jobs kept as files (apply, diff, export), one-line errors.

It talks to a cluster only through the SDK (``cronfleet.client``); the
commands that run the cluster itself (``up``, ``migrate``, the roles) call
into ``launch``. One module per command group; ``app.py`` puts them together.
"""
