"""The log shipper: a side process that ships local log files to the monitor over SSH.

It is never imported by the Squid helper, and it imports nothing of the
helper: the only coupling is the log file on disk. See ``docs/shipper.md``.
"""
