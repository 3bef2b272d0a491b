#!/usr/bin/env bash
# The ISP overview at ISP scale (issue 19): 50,000 accounts in 5,000
# domains with 30 days of observations each. Store.Overview itself
# (observe's BenchmarkOverviewTypical), then the console's overview page
# computed for every request and as served, kept for 30 s per query
# (console's BenchmarkOverviewPage/every-request and /cached), in one
# run; each reports the longest wait of a Record meanwhile.
#   .ci/bench-overview.sh           (from the repository root)
# Env (defaults): COUNT=3, TIMES=10 (iterations per benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-3}
TIMES=${TIMES:-10}
lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core):' | tr -s ' '
go version
uptime
go test -run '^$' -bench 'BenchmarkOverviewTypical' -benchtime "${TIMES}x" -count "$COUNT" ./server/observe/ | grep -E '^Benchmark'
go test -run '^$' -bench 'BenchmarkOverviewPage' -benchtime "${TIMES}x" -count "$COUNT" ./server/web/console/ | grep -E '^Benchmark'
uptime
