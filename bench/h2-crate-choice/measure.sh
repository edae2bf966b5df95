#!/bin/bash
# usage: measure.sh REPS N
reps=${1:-3}; n=${2:-300000}
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for r in $(seq 1 $reps); do
 for b in tokioh2 pollh2 monoioh2; do
  case $b in tokioh2) p=7001;; monoioh2) p=7002;; pollh2) p=7003;; esac
  taskset -c 0 ./target/release/$b 127.0.0.1:$p > /dev/null & pid=$!
  sleep 0.3
  c0=$(cpu $pid)
  out=$(taskset -c 1 h2load -n $n -c 10 -m 100 http://127.0.0.1:$p/ 2>&1)
  c1=$(cpu $pid)
  hwm=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
  kill $pid; wait $pid 2>/dev/null
  rps=$(echo "$out" | grep -o "finished in [^,]*, [0-9.]* req/s" | grep -o "[0-9.]* req/s")
  ok=$(echo "$out" | grep -o "[0-9]* succeeded")
  echo "$r $b rps=$rps ok=$ok cpu_us_per_req=$(echo "scale=3; ($c1-$c0)*1000000/$tck/$n" | bc) hwm_kb=$hwm"
 done
done
