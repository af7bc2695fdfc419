"""`sshsim compat`: which real clients still connect to an sshd_config, and why not.

    probe     one profile's connections (one per authentication method it uses)
    evidence  what sshd logged about them: negotiated algorithms, the line explaining a refusal
    check     one server per config, every profile at once, the table's rows
    report    the table on the terminal, JSON, JUnit, HTML, and the diff against a baseline
"""
