"""Root pytest configuration: doctests of the package run with the tests (``--doctest-modules``).

The deprecated alias modules warn when imported (an error under the test suite's warning
filter), so the doctest collector leaves them out; their aliases are tested in
``tests/test_train.py``.
"""

collect_ignore = ["xprospect/models/transfer.py", "xprospect/score/core.py"]
