#!/usr/bin/env bash
# Autoconfig throughput: mailsetup serve vs nginx serving the same bytes as
# a static file, on loopback, in one run, alternating, with wrk.
#   .ci/bench-autoconfig.sh            (from the repository root)
# Env: ROUNDS (3), WRK_ARGS ("-t2 -c50 -d10s"), WORK (a temp dir).
# Prints wrk's summary per run and the idle RSS of mailsetup.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
WRK_ARGS=${WRK_ARGS:--t2 -c50 -d10s}
WORK=${WORK:-$(mktemp -d)}
chmod 755 "$WORK" # nginx's workers read the XML from here
PEERS=$(cd ../shared/peers && pwd)
command -v wrk >/dev/null || { apt-get install -y -qq wrk nginx-light >/dev/null; }

go build -o "$WORK/mailsetup" ./cmd/mailsetup
"$WORK/mailsetup" serve --data "$WORK/data" </dev/null >"$WORK/serve.out" 2>"$WORK/serve.log" &
MS_PID=$!
MQ_PID=
trap 'kill $MS_PID $MQ_PID 2>/dev/null || true; PEERS_DIR="$WORK/peers" "$PEERS/nginx-autoconfig.sh" stop </dev/null >/dev/null 2>&1 || true' EXIT
started() { # name, pid, stdout: waits up to 10 s for the listeners, or says why not
	for _ in $(seq 100); do grep -q '^domain ' "$3" 2>/dev/null && return 0; kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
	echo "bench-autoconfig: $1 did not start (a port of the embedded default in use?):" >&2
	tail -5 "${3%.out}.log" >&2
	exit 1
}
started "mailsetup serve" "$MS_PID" "$WORK/serve.out"
sleep 1
echo "mailsetup idle RSS after start: $(awk '/VmRSS/ {print $2, $3}' /proc/$MS_PID/status)"

# A second instance with every request logged (log.access = true).
mkdir -p "$WORK/quiet"
cp -r "$WORK/data/tls" "$WORK/data/accounts.json" "$WORK/quiet/"
sed -E -e 's/:8080"/:8180"/; s/:8443"/:8543"/; s/:8053"/:8153"/; s/:9100"/:9200"/; s/^access = false/access = true/' \
	-e 's/\b10(025|587|465|143|993|110|995)\b/11\1/g' "$WORK/data/mailsetup.toml" >"$WORK/quiet/mailsetup.toml"
"$WORK/mailsetup" serve --config "$WORK/quiet/mailsetup.toml" </dev/null >"$WORK/quiet.out" 2>"$WORK/quiet.log" &
MQ_PID=$!
started "the log.access instance" "$MQ_PID" "$WORK/quiet.out"

TB="http://127.0.0.1:8080/mail/config-v1.1.xml?emailaddress=user1%40example.test"
curl -sS -o "$WORK/tb.xml" "$TB"
PEERS_DIR="$WORK/peers" NGINX_XML="$WORK/tb.xml" "$PEERS/nginx-autoconfig.sh" start </dev/null >"$WORK/nginx.log" 2>&1
NG="http://127.0.0.1:21080/mail/config-v1.1.xml?emailaddress=user1%40example.test"

cat >"$WORK/pox.xml" <<'XML'
<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>user1@example.test</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
XML
cat >"$WORK/pox.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
local f = io.open("$WORK/pox.xml", "rb")
wrk.body = f:read("*a")
f:close()
LUA
POX="http://127.0.0.1:8080/Autodiscover/Autodiscover.xml"
curl -sS -o /dev/null -w 'autodiscover POST check: %{http_code}\n' -H 'Content-Type: text/xml' --data-binary @"$WORK/pox.xml" "$POX"
curl -sS -o /dev/null -w 'nginx check: %{http_code}\n' "http://127.0.0.1:21080/mail/config-v1.1.xml"

NG_PIDS="$(cat "$WORK/peers/nginx/nginx.pid") $(pgrep -P "$(cat "$WORK/peers/nginx/nginx.pid")" | tr '\n' ' ')"
# cpu PIDS...: the processes' user+system CPU so far, in clock ticks.
cpu() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}'; }
TICK=$(getconf CLK_TCK)
run() { # name, server PIDs (quoted), wrk args...
	local name=$1 pids=$2; shift 2
	local before after
	# shellcheck disable=SC2086
	before=$(cpu $pids)
	# shellcheck disable=SC2086
	wrk $WRK_ARGS --latency "$@" >"$WORK/wrk.out"
	# shellcheck disable=SC2086
	after=$(cpu $pids)
	# The server's CPU per request is less sensitive to the machine's
	# other load than requests/s: it is the figure to compare.
	awk -v n="$name" -v ticks=$((after - before)) -v hz="$TICK" '/Requests\/sec/ {rps=$2} /requests in/ {reqs=$1} / 50%/ {p50=$2} / 99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "%-26s %10s req/s  p50 %8s  p99 %8s  server CPU %5.1f us/req  non-2xx %s\n", n, rps, p50, p99, ticks / hz * 1e6 / reqs, (bad==""?0:bad)}' "$WORK/wrk.out"
}
for r in $(seq "$ROUNDS"); do
	echo "== round $r: wrk $WRK_ARGS"
	run "nginx static XML" "$NG_PIDS" "$NG"
	run "mailsetup Thunderbird" "$MS_PID" "$TB"
	run "mailsetup Autodiscover" "$MS_PID" -s "$WORK/pox.lua" "$POX"
	run "  same, log.access=true" "$MQ_PID" "${TB/8080/8180}"
	run "  same, log.access=true" "$MQ_PID" -s "$WORK/pox.lua" "${POX/8080/8180}"
done
sleep 2
echo "mailsetup RSS after load, idle: $(awk '/VmRSS/ {print $2, $3}' /proc/$MS_PID/status)"
echo "log records dropped: $(curl -s http://127.0.0.1:9100/metrics | awk '/^mailsetup_log_dropped_total/ {print $2}')"
