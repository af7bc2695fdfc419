"""`sshsim learn`: turn what a real client does on the wire into a client profile (issue 19).

The capturing endpoint (endpoint.py) is an asyncssh SSH server on loopback, not a relay in front
of sshd: a relay sees only ciphertext after NEWKEYS, so it could record the banner and KEXINIT
and nothing of the authentication, channels and requests that make up most of a profile. The
server decrypts, so a hook on its packet dispatch (hook.py) records every packet the client sends.
record.py reads one connection's packets as facts, merge.py merges several connections into one
profile (conditions where the schema has them, conflicts reported), check.py compares facts.
"""
