#!/usr/bin/env bash
# Installs what hearth needs on a Debian machine (run as root): the Python 3.11 that the
# python3.11 runtime runs, pip (to install awslambdaric into the runtimes directory), venv
# (the test suite's boto3 environment), curl (the echo-sh sample) and bash.
set -euo pipefail
need=()
command -v /usr/bin/python3.11 >/dev/null || need+=(python3.11)
/usr/bin/python3.11 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
/usr/bin/python3.11 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3.11-venv)
command -v curl >/dev/null || need+=(curl)
command -v bash >/dev/null || need+=(bash)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo (Rust 1.95) is required" >&2; exit 1; }
