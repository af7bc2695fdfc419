"""Moved to simulator/kex/kexinit.py (the profiles, below the driver, fingerprint with it too).

A transitional re-export for code written against the old path; delete it once nothing imports
simulator.driver.kexinit.
"""

from simulator.kex.kexinit import MSG_KEXINIT, KexinitLists, hassh, parse_kexinit  # noqa: F401
