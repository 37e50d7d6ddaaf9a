#!/bin/sh
# Restart the demo service: stop the running one, start this release's
# public/ on :8080, record the config it loaded, wait until it answers.
set -e
R=$(cd "$(dirname "$0")/.." && pwd -P)
RUN=/opt/app/shared/run
mkdir -p "$RUN"
if [ -f "$RUN/app.pid" ]; then
  old=$(cat "$RUN/app.pid")
  kill "$old" 2>/dev/null || true
  while kill -0 "$old" 2>/dev/null; do sleep 0.05; done
fi
cp /etc/app/app.conf "$RUN/conf-loaded" 2>/dev/null || : > "$RUN/conf-loaded"
cd "$R/public"
setsid /usr/bin/python3 -m http.server 8080 --bind 0.0.0.0 >/var/log/app/http.log 2>&1 </dev/null &
echo $! > "$RUN/app.pid"
for i in $(seq 100); do
  if curl -fs -o /dev/null http://127.0.0.1:8080/version.txt; then exit 0; fi
  sleep 0.05
done
echo "service did not start" >&2
exit 1
