"""Moved to simulator/profiles.py: client profiles are knowledge the driver, the scenario loader
and the verifier all read, so they sit below all three (issue 13, item 5: layers that depend one way).

A transitional re-export for code written against the old path. It is a package, not
driver/profiles.py, so that git follows the move of that file when branches that still edit it
are merged; delete it once nothing imports simulator.driver.profiles.
"""

from simulator.profiles import *  # noqa: F403
