#!/bin/sh
# The image's entrypoint: every argument is for the `cockpit` command, so compose can
# say `command: ["media"]` or `["serve", "--role", "web"]`. A leading `cockpit` is
# dropped, so `docker compose run --rm web1 cockpit user add ...` works as written in
# the docs too. A shell: `docker compose run --rm --entrypoint sh web1`.
set -e
if [ "${1:-}" = "cockpit" ]; then
  shift
fi
exec cockpit "$@"
