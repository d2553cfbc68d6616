#!/usr/bin/env bash
# Stop the daemons .ci/slurm_up.sh started (by their PID files) and wipe the cluster state.
for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
done
rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/*
