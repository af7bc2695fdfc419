"""One flow with the real paramiko (run by the venv's python): exec, shell, sftp or password.

argv: flow host port user key password. Used by tests/test_real_clients.py only; it does what
a typical SSHClient user writes, so sshd logs what paramiko really sends.
"""

import sys

import paramiko

flow, host, port, user, key, password = sys.argv[1:7]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
if flow == "password":
    transport = paramiko.Transport((host, int(port)))
    transport.start_client()
    try:
        transport.auth_password(user, "wrong-" + password)
    except paramiko.AuthenticationException:
        pass
    transport.auth_password(user, password)
    # Then what SSHClient.exec_command does on this transport: the command, and its stdin file
    # dropped unused (closing it sends CHANNEL_EOF), as in the exec flow.
    chan = transport.open_session()
    chan.exec_command("true")
    chan.makefile_stdin("wb").close()
    chan.recv_exit_status()
    transport.close()
    sys.exit(0)
client.connect(host, int(port), username=user, key_filename=key, look_for_keys=False, allow_agent=False)
if flow == "exec":
    _, out, _ = client.exec_command("true")
    out.channel.recv_exit_status()
elif flow == "shell":
    # What SSHClient.invoke_shell does, with X11 forwarding added by hand as paramiko's users
    # must: a session, its pty, the x11-req (request_x11 makes up a MIT-MAGIC-COOKIE-1 cookie
    # and waits for the reply), then the shell.
    chan = client.get_transport().open_session()
    chan.get_pty()
    chan.request_x11()
    chan.invoke_shell()
    chan.sendall(b"exit\n")
    while chan.recv(4096):
        pass
elif flow == "sftp":
    sftp = client.open_sftp()
    sftp.listdir(".")
    sftp.close()
client.close()
