"""Verification: expected events against parsed logs, log-to-log diffs, and reports."""
