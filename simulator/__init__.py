"""sshsim: an SSH connection replay simulator.

Scenario files describe what SSH clients do; a driver on asyncssh plays them against a real
OpenSSH sshd, whose syslog is captured with pids, parsed into events, grouped into connections
and compared with what the scenario expects.
"""

__version__ = "0.1.0"
