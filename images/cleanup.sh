#!/usr/bin/env bash
# Removes what fleetbench's docker provider left on this Docker engine: every container,
# network and volume labelled fleetbench.run (or only those of one run).
#
#   images/cleanup.sh            every fleetbench run
#   images/cleanup.sh RUN_ID     one run (the id is in the harness's log and in each
#                                object's fleetbench.run label)
#
# Normally nothing is left (the provider removes its objects at the end, on errors, panics
# and Ctrl-C, and sweeps runs abandoned by dead processes of this machine when it starts);
# this is for a process killed with SIGKILL on a shared engine, or for the impatient.
set -euo pipefail

command -v docker >/dev/null 2>&1 || { echo "images/cleanup.sh: docker is not installed" >&2; exit 1; }
selector="fleetbench.run${1:+=$1}"

# Agents live in another container's network namespace: remove them first.
agents=$(docker ps -aq --filter "label=$selector" --filter "label=fleetbench.component=agent")
[ -z "$agents" ] || docker rm -f -v $agents >/dev/null
containers=$(docker ps -aq --filter "label=$selector")
[ -z "$containers" ] || docker rm -f -v $containers >/dev/null
networks=$(docker network ls -q --filter "label=$selector")
[ -z "$networks" ] || docker network rm $networks >/dev/null
volumes=$(docker volume ls -q --filter "label=$selector")
[ -z "$volumes" ] || docker volume rm $volumes >/dev/null
echo "removed $(echo $agents $containers | wc -w) container(s), $(echo $networks | wc -w) network(s), $(echo $volumes | wc -w) volume(s) labelled $selector"
