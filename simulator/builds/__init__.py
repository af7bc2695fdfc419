"""Upstream OpenSSH builds: known versions, their tarballs, and the per-version cache of built sshds."""
