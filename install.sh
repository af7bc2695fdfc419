#!/bin/sh
# Install sshsim into a virtual environment and put `sshsim` on PATH: the README's set-up step.
#
#   sh install.sh          this checkout, installed (as a user would)
#   sh install.sh --dev    editable, with the test tools (pytest, ...): the README's test command
#
# Why a virtual environment: Debian 12 and Ubuntu 24.04 ship no pip, and their Python refuses
# `pip install` outside one (PEP 668, externally-managed-environment). The environment is
# /opt/sshsim as root (else ~/.local/share/sshsim), or $SSHSIM_VENV; the Python is python3, or
# $SSHSIM_PYTHON (3.11 or newer); the link goes to /usr/local/bin (~/.local/bin), or $SSHSIM_BIN.
# As root, a missing venv module (Debian's python3.X-venv) is installed with apt-get; `sshsim
# setup` then installs the system packages.
set -eu
cd "$(dirname "$0")"
py=${SSHSIM_PYTHON:-python3}
spec=.
editable=
case "${1:-}" in
  --dev) spec=".[test]"; editable=-e ;;
  "") ;;
  *) echo "usage: sh install.sh [--dev]" >&2; exit 2 ;;
esac
if [ "$(id -u)" = 0 ]; then
  venv=${SSHSIM_VENV:-/opt/sshsim}; bin=${SSHSIM_BIN:-/usr/local/bin}
else
  venv=${SSHSIM_VENV:-$HOME/.local/share/sshsim}; bin=${SSHSIM_BIN:-$HOME/.local/bin}
fi

if ! command -v "$py" >/dev/null 2>&1; then
  echo "install.sh: $py not found: install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3)" >&2
  exit 1
fi
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  echo "install.sh: sshsim needs Python 3.11 or newer; $py is $version. On an older distribution" >&2
  echo "install a newer Python beside it (a distribution backport, pyenv or uv) and run" >&2
  echo "  SSHSIM_PYTHON=/path/to/python3.11 sh install.sh" >&2
  exit 1
fi
if ! "$py" -c 'import ensurepip' >/dev/null 2>&1; then
  # Debian and Ubuntu split the venv module's pip bootstrap into python3.X-venv.
  package=$("$py" -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: installing $package"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null
  else
    echo "install.sh: $py cannot make a virtual environment: install $package (as root: apt-get install $package)" >&2
    exit 1
  fi
fi

"$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check $editable "$spec"
mkdir -p "$bin"
ln -sf "$venv/bin/sshsim" "$bin/sshsim"
echo "install.sh: sshsim installed in $venv; $bin/sshsim runs it"
case ":$PATH:" in
  *":$bin:"*) ;;
  *) echo "install.sh: $bin is not on PATH: add it, or run $venv/bin/sshsim" >&2 ;;
esac
