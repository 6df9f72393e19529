#!/usr/bin/env bash
# abgroups.sh BASE_TREE NEW_TREE [RUNS] [OUT]: the README's group figures,
# A/B in one session. For each of RUNS rounds it starts `svrkit up
# examples/im` from BASE_TREE, runs the 500-member and the 100x50 group
# workloads against it with this tree's imload, stops it, then does the same
# for NEW_TREE, so both see the same machine load. Each run gets a fresh data
# directory. The reports (imload -json) and each run's start time and load
# average go to OUT (default /tmp/abgroups). E.g. for the fan-out batching:
#
#   git worktree add /tmp/base09 09ccf29
#   tools/imload/abgroups.sh /tmp/base09 . 3
set -u
base=$(cd "$1" && pwd); new=$(cd "$2" && pwd); runs=${3:-3}; out=${4:-/tmp/abgroups}
here=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out/bin"
(cd "$base" && go build -o "$out/bin/svrkit-base" ./tools/svrkit) || exit 1
(cd "$new" && go build -o "$out/bin/svrkit-new" ./tools/svrkit) || exit 1
(cd "$here" && go build -o "$out/bin/imload" ./tools/imload) || exit 1

one() { # LABEL TREE SVRKIT N
  local label=$1 tree=$2 bin=$3 n=$4 data="$out/data/$1-$4"
  rm -rf "$data"; mkdir -p "$data"
  (cd "$tree" && exec "$bin" up -datadir "$data" examples/im) > "$out/$label-$n.up.log" 2>&1 &
  local pid=$! ok=0
  for _ in $(seq 1 900); do
    if python3 -c "import json,sys; s=json.load(open('$data/up.json')); sys.exit(0 if s['instances'] and all(x['state']=='ready' for x in s['instances']) else 1)" 2>/dev/null; then ok=1; break; fi
    sleep 1
  done
  if [ $ok = 1 ]; then
    sleep 3
    echo "$label-$n g500 $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$out/bin/imload" -up "$data/up.json" -json -groups 1x500 -senders 1 -syncers 0 -think 1s -duration 30s \
      > "$out/$label-$n.g500.json" 2> "$out/$label-$n.g500.err"
    echo "$label-$n g100 $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$out/bin/imload" -up "$data/up.json" -json -groups 100x50 -users 100 -syncers 20 -poll 50ms -think 6s -drain 120s -duration 30s \
      > "$out/$label-$n.g100.json" 2> "$out/$label-$n.g100.err"
  else
    echo "$label-$n: the backend did not get ready"
  fi
  kill "$pid"; wait "$pid"
  rm -rf "$data"
}

for n in $(seq 1 "$runs"); do
  one base "$base" "$out/bin/svrkit-base" "$n"
  one new "$new" "$out/bin/svrkit-new" "$n"
done
