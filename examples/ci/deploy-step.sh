#!/bin/sh
# A CI or deploy shell step: install the build over a tree that running
# programs use, keep a JSON log of what truncguard protected, print a summary,
# and fail the step if some write could not be protected.
#
#   TG_LOG_DIR=artifacts/truncguard sh deploy-step.sh make install
set -eu

log_dir=${TG_LOG_DIR:-truncguard-log}
mkdir -p "$log_dir"
# Any earlier run's logs would be counted again.
rm -f "$log_dir"/tg.*
# A log directory that can't be written: the lines would go to stderr, and the
# summary could count none of them. Fail before deploying.
probe="$log_dir/tg-probe.$$"
if ! (: >"$probe") 2>/dev/null; then
  echo "deploy-step: cannot write the log directory $log_dir: not deploying" >&2
  exit 2
fi
rm -f "$probe"

# --json: one JSON object per line; --log: one file per process, FILE.PID
# (a relative name is made absolute, so "make -C" still logs here).
truncguard --json --log="$log_dir/tg" "$@"

# What was protected, and whether anything could not be.
python3 "$(dirname "$0")/truncguard-summary.py" "$log_dir"/tg.*

# What to restart so that new processes load the new files (exit 1: some).
truncguard stale || true
