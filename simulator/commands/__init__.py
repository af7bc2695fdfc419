"""One module per `sshsim` subcommand; simulator/cli.py lists them."""
