"""A wall clock off by STASHHOG_TEST_CLOCK_SKEW seconds, for one process of a test host.

Network namespaces share the kernel's clock (time namespaces offset only the monotonic and
boot clocks), so a host's skew is made in the process: ``datetime.datetime.now``/``utcnow``
and ``time.time`` are shifted; ``time.monotonic`` is not (it never crosses hosts). Loaded by
Python at start when this folder is on PYTHONPATH (tests/hosts/cluster.py does that).
"""

import datetime as _datetime
import os
import time as _time

_SKEW = float(os.environ.get("STASHHOG_TEST_CLOCK_SKEW", "0") or 0)

if _SKEW:
    _offset = _datetime.timedelta(seconds=_SKEW)

    _Real = _datetime.datetime

    class _SkewedDateTime(_Real):
        @classmethod
        def now(cls, tz=None):
            return _Real.now(tz) + _offset

        @classmethod
        def utcnow(cls):
            return _Real.utcnow() + _offset

    _real_time = _time.time
    _datetime.datetime = _SkewedDateTime
    _time.time = lambda: _real_time() + _SKEW
