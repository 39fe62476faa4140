#!/usr/bin/env bash
# Sets up, builds and runs `hearth serve` on 127.0.0.1:8080 with the sample functions
# deployed, invokes one, then keeps serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --workspace
bin=target/release/hearth
data=${HEARTH_DATA_DIR:-$PWD/hearth-data}
export HEARTH_ENDPOINT=${HEARTH_ENDPOINT:-http://127.0.0.1:8080}
ready=$(mktemp -u /tmp/hearth-ready.XXXXXX)
"$bin" serve --data-dir "$data" --ready-file "$ready" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' EXIT INT TERM
until [ -f "$ready" ]; do kill -0 $pid || exit 1; sleep 0.2; done
pkg=$(mktemp -d) && cp target/release/bootstrap "$pkg/"
deploy() { "$bin" fn get "$1" >/dev/null 2>&1 || "$bin" fn create "$@" >/dev/null && echo "deployed $1"; }
deploy echo-sh --runtime provided --code examples/functions/echo-sh
deploy hello-py --runtime python3.11 --handler hello.handler --code examples/functions/hello-py
deploy hello-rs --runtime provided.al2023 --code "$pkg"
echo "+ hearth invoke hello-py --payload '{\"name\":\"hearth\"}' --log-tail"
"$bin" invoke hello-py --payload '{"name":"hearth"}' --log-tail
echo
echo "hearth is serving on $HEARTH_ENDPOINT (admin: http://127.0.0.1:9100/metrics). Ctrl-C stops it."
wait $pid
