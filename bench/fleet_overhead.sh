#!/bin/sh
# The fleet's overhead per job against a local scan (docs/fleet.md): the same
# N pictures scanned by `deepfake-scan` many-file mode (one process, the model
# loaded once) and by `deepfake-scan --redis --submit --wait` with 1 and 2
# warm deepfake-worker processes (model already loaded) on a private
# redis-server. Prints wall-clock seconds; nothing is asserted.
#   bench/fleet_overhead.sh BUILD_DIR [N]
set -eu
build=$(cd "$1" && pwd); n=${2:-20}
work=$(mktemp -d /tmp/dfd-fleet-bench-XXXXXX)
port=$(( 20000 + $$ % 20000 ))
export GST_PLUGIN_PATH="$build/gst" GST_REGISTRY="$work/registry.bin" DFD_TEST_DATA="$(dirname "$0")/../tests/data" OMP_NUM_THREADS=1
scan="$build/tools/deepfake-scan"; worker="$build/tools/deepfake-worker"
i=0; while [ $i -lt "$n" ]; do "$build/tests/gst/make_clip" "$work/p$i.png" --side $((200 + i)) >/dev/null 2>&1; i=$((i + 1)); done
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

"$scan" -q "$work/p0.png" >/dev/null || true  # the plugin registry, once
t0=$(now); "$scan" -q "$work/p0.png" >/dev/null || true; t1=$(now)
echo "one picture, deepfake-scan (start-up + model + scan): $(secs $t0 $t1) s"
for jobs in 1 2; do
  t0=$(now); "$scan" -q --jobs $jobs --num-threads $jobs "$work"/p*.png >/dev/null || true; t1=$(now)
  echo "local many-file, --jobs $jobs: $n pictures in $(secs $t0 $t1) s"
done

redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
redis=$!
trap 'kill $redis $w1 ${w2:-} 2>/dev/null || true; rm -rf "$work"' EXIT
w1=; w2=
until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.1; done
url=redis://127.0.0.1:$port
for workers in 1 2; do
  "$worker" --redis $url --name b1 --num-threads 1 -q & w1=$!
  [ $workers = 2 ] && { "$worker" --redis $url --name b2 --num-threads 1 -q & w2=$!; }
  # Warm: one job through each worker (model loaded, plugin registered).
  "$scan" -q --redis $url --submit "$work/p0.png" "$work/p1.png" --wait >/dev/null || true
  t0=$(now); "$scan" -q --redis $url --submit "$work/p0.png" >/dev/null; t1=$(now)
  echo "  deepfake-scan --submit of one picture, no wait (the submitter's start-up): $(secs $t0 $t1) s"
  "$scan" -q --redis $url --submit "$work/p0.png" --wait >/dev/null || true
  t0=$(now); "$scan" -q --redis $url --submit "$work"/p*.png --wait >/dev/null || true; t1=$(now)
  echo "fleet, $workers warm worker(s): $n pictures submitted and waited for in $(secs $t0 $t1) s"
  kill $w1 ${w2:-} 2>/dev/null || true; wait $w1 ${w2:-} 2>/dev/null || true; w2=
done
