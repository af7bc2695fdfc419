"""Capture of the target sshd's log, with the pid of every line."""

from simulator.capture.syslog import SyslogReceiver, SyslogRecord, parse_datagram

__all__ = ["SyslogReceiver", "SyslogRecord", "parse_datagram"]
