"""`sshsim detect`: generated corpora run through real detection tools, scored against their labels.

    from simulator.detect import run_matrix
    cells = run_matrix(spec, tools=[Tool("fail2ban", "sshd")], targets=["local"], formats=["syslog"], folder=tmp)

Modules: `truth` (what the labels say a detector must find: failure lines, their sources and
times), `score` (recall and precision; the ban windows of fail2ban's jail and crowdsec's leaky
buckets), `fail2ban` (fail2ban-regex with a filter, the jail's maxretry and findtime),
`crowdsec` (crowdsec's file replay with the sshd parsers and ssh brute-force scenarios of the hub
snapshot Debian ships, in a private config folder), `matrix` (target x format x tool: generate,
run, score).
"""

from simulator.detect.matrix import Cell, Tool, parse_tool, run_matrix

__all__ = ["Cell", "Tool", "parse_tool", "run_matrix"]
