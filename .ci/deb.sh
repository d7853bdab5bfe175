#!/usr/bin/env bash
# CI: build the Debian package with cargo-deb, install it with dpkg on this (CI) machine, start the installed
# binary as the package's footfall user with the packaged config, and check /healthz and the read API.
# It replaces any footfall package and /var/lib/footfall database already on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0
cargo build --release -p footfall
generated=packaging/generated
rm -rf "$generated" && mkdir -p "$generated/completions"
"$target/release/footfall" completions bash >"$generated/completions/footfall.bash"
"$target/release/footfall" completions zsh >"$generated/completions/_footfall"
"$target/release/footfall" completions fish >"$generated/completions/footfall.fish"
"$target/release/footfall" manpages "$generated/man"
cargo deb -p footfall --no-build --output "$target/debian/footfall.deb"

dpkg --purge footfall >/dev/null 2>&1 || true
rm -rf /var/lib/footfall
dpkg -i "$target/debian/footfall.deb"
dpkg -L footfall | grep -qx /usr/share/man/man1/footfall.1.gz || dpkg -L footfall | grep -qx /usr/share/man/man1/footfall.1
dpkg -L footfall | grep -qx /usr/share/bash-completion/completions/footfall
[ "$(stat -c '%U:%G %a' /etc/footfall/footfall.toml)" = "root:footfall 640" ]
[ "$(stat -c '%U' /var/lib/footfall)" = "footfall" ]

as_footfall() { runuser -u footfall -- "$@"; }
demo=$(as_footfall /usr/bin/footfall --database sqlite:///var/lib/footfall/footfall.db demo --days 2)
password=$(sed -n 's/.*password \([^ ]*\)$/\1/p' <<<"$demo")
port=18790
# The unit's ExecStart, with the listen address moved off 8000 (a developer's server may be there).
# setpriv execs the server itself as footfall (runuser would fork), so $! is the server and the kill
# below stops it rather than leaving it on the port.
FOOTFALL_LISTEN="127.0.0.1:$port" RUST_LOG=warn setpriv --reuid=footfall --regid=footfall --init-groups \
    /usr/bin/footfall serve --config /etc/footfall/footfall.toml &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null
[ "$(ps -o user= -p "$server")" = footfall ]
from=$(date -u -d '-1 day' +%Y-%m-%dT%H:00:00Z)
until=$(date -u +%Y-%m-%dT%H:00:00Z)
body=$(curl -sf -u "demo:$password" \
    "http://127.0.0.1:$port/api/bi/acquisition-metrics/visits/?store_code=116500&datetime_gte=$from&datetime_lte=$until")
python3 -c 'import json,sys; page=json.loads(sys.argv[1]); assert page["count"] > 0 and page["results"], page' "$body"
echo "deb: installed $(dpkg-query -W -f '${Package} ${Version}' footfall), served the demo as user footfall"
kill $server; wait $server || true
trap - EXIT
dpkg --purge footfall >/dev/null
