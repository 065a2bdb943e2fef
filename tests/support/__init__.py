"""Helpers shared by the test suite: real git/git-annex runs and a private loopback sshd.

The fixtures that wrap them live in ``tests/conftest.py``.
"""
