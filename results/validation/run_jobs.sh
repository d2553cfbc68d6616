#!/usr/bin/env bash
# Run each line of a jobs file (the arguments of one algorithms/ppo.py run) at most $2 at a time
# (default 2), from the repository root, skipping runs that are finished or running elsewhere:
#   bash results/validation/run_jobs.sh results/validation/jobs_regimes.txt 2
set -u
jobs_file=$1 parallel=${2:-2}
while read -r line; do
  out=${line##*--out }
  [ -e "$out/run.json" ] && continue
  while [ "$(pgrep -fc 'python algorithms/ppo.py')" -ge "$parallel" ]; do sleep 5; done
  pgrep -f -- "--out $out\$" > /dev/null && continue
  python algorithms/ppo.py $line > /dev/null &
  sleep 2
done < "$jobs_file"
wait
