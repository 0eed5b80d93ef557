#!/bin/sh
# The proxy service's command: start nginx (it daemonizes), then run `berth proxy` driving it.
# Extra arguments go to `berth proxy`.
set -eu
dir=/var/lib/berth/nginx
conf=/app/deploy/image/nginx.conf
nginx="nginx -e stderr -c $conf"
mkdir -p "$dir/tmp"
[ -f "$dir/upstreams.conf" ] || echo '# written by berth proxy' > "$dir/upstreams.conf"
rm -f "$dir/nginx.pid"
$nginx
exec node /app/bin/berth.js proxy \
  --nginx-conf "$dir/upstreams.conf" \
  --nginx-pid-file "$dir/nginx.pid" \
  --check-cmd "$nginx -t -q" \
  --listen 8080 \
  "$@"
