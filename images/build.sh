#!/usr/bin/env bash
# Builds the docker provider's images from this checkout's release binaries:
# fleetbench/{apiserver,gitserver,controller,agent}:$FLEETBENCH_IMAGE_TAG (default dev).
#
#   images/build.sh              cargo build --release of each binary, then the images
#   images/build.sh --no-cargo   use the binaries already in target/release
#   images/build.sh --debug      use the test build's binaries in target/debug (what
#                                `make test` does: the docker tests check the provider's
#                                mechanics, and a second, optimised build would double
#                                CI's compile time)
#
# Nothing is pulled: every image is FROM scratch, filled with the binaries below, the shared
# libraries ldd says they need, git and git-http-backend (for the git server), CA
# certificates and an unprivileged user. Running it again rebuilds what changed and re-tags.
set -euo pipefail

# The one list of release binaries that go into the images, as BINARY:PACKAGE.
RELEASE_BINARIES="fleetbench:fleetbench fleet-controller:fleet-controller"
BINARIES="$(for entry in $RELEASE_BINARIES; do printf '%s ' "${entry%%:*}"; done)"
# The images (stages of images/Dockerfile), in build order.
COMPONENTS="apiserver gitserver controller agent"
TAG="${FLEETBENCH_IMAGE_TAG:-dev}"
# The unprivileged user the containers run as.
USER_ID=65532

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CONTEXT="$TARGET_DIR/images/context"
ROOTFS="$CONTEXT/rootfs"

die() { echo "images/build.sh: $*" >&2; exit 1; }
step() { echo "==> $*" >&2; }

run_cargo=1
profile=release
for arg in "$@"; do
  case "$arg" in
    --no-cargo) run_cargo=0 ;;
    --debug) run_cargo=0; profile=debug ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument $arg (use --no-cargo, --debug or --help)" ;;
  esac
done

command -v docker >/dev/null 2>&1 \
  || die "docker is not installed: the docker provider's images need a Docker engine and its CLI (https://docs.docker.com/engine/install/); the embedded provider needs neither"
docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1 \
  || die "cannot reach the Docker engine (is the daemon running? is DOCKER_HOST right? do you have access to its socket?)"
for tool in ldd git; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed to collect the images' files"
done

started=$(date +%s)
if [ "$run_cargo" = 1 ]; then
  # One package at a time, so each binary gets exactly its own package's dependency
  # features (a workspace-wide build unifies them: the harness's test-container crates
  # would add a second TLS crypto provider to the controller).
  for entry in $RELEASE_BINARIES; do
    step "cargo build --release -p ${entry#*:} --bin ${entry%%:*}"
    (cd "$ROOT" && cargo build --release -p "${entry#*:}" --bin "${entry%%:*}")
  done
fi
for bin in $BINARIES; do
  [ -x "$TARGET_DIR/$profile/$bin" ] \
    || die "$TARGET_DIR/$profile/$bin is missing: run cargo build$([ "$profile" = release ] && echo " --release") --bins (or drop --no-cargo)"
done

step "collecting the runtime in $ROOTFS"
rm -rf "$CONTEXT"
mkdir -p "$ROOTFS"/{usr/local/bin,usr/bin,etc/ssl/certs,tmp} "$CONTEXT/home"
chmod 1777 "$ROOTFS/tmp"

# Our binaries, without their debug sections (symbols stay, so backtraces name functions).
for bin in $BINARIES; do
  cp "$TARGET_DIR/$profile/$bin" "$ROOTFS/usr/local/bin/$bin"
  if command -v strip >/dev/null 2>&1; then strip --strip-debug "$ROOTFS/usr/local/bin/$bin"; fi
done

# git, as the git server runs it: `git http-backend` and the builtins it starts
# (upload-pack, receive-pack, index-pack, ...), which are links to git itself. The git
# server starts them with a cleared environment, so they go where this git looks without
# GIT_EXEC_PATH: its compiled-in exec path (and template directory).
GIT_BIN="$(command -v git)"
GIT_EXEC="$(env -u GIT_EXEC_PATH git --exec-path)"
[ -x "$GIT_EXEC/git-http-backend" ] || die "$GIT_EXEC/git-http-backend is missing (install git's http-backend)"
cp -L "$GIT_BIN" "$ROOTFS/usr/bin/git"
mkdir -p "$ROOTFS$GIT_EXEC"
cp -L "$GIT_EXEC/git-http-backend" "$ROOTFS$GIT_EXEC/git-http-backend"
git_inode=$(stat -L -c %i "$GIT_BIN")
for entry in "$GIT_EXEC"/git-*; do
  name=$(basename "$entry")
  [ -e "$ROOTFS$GIT_EXEC/$name" ] && continue
  if [ "$(stat -L -c %i "$entry")" = "$git_inode" ]; then
    ln -s /usr/bin/git "$ROOTFS$GIT_EXEC/$name"
  fi
done
ln -sf /usr/bin/git "$ROOTFS$GIT_EXEC/git"
git_prefix="$(dirname "$(dirname "$GIT_EXEC")")"
for templates in "$git_prefix/share/git-core/templates" /usr/share/git-core/templates; do
  if [ -d "$templates" ]; then
    mkdir -p "$ROOTFS$(dirname "$templates")"
    cp -r "$templates" "$ROOTFS$templates"
    break
  fi
done

# Exactly the shared libraries these programs load, at the paths ldd resolves them to
# (the dynamic loader included).
elves=()
for bin in $BINARIES; do elves+=("$ROOTFS/usr/local/bin/$bin"); done
elves+=("$ROOTFS/usr/bin/git" "$ROOTFS$GIT_EXEC/git-http-backend")
for elf in "${elves[@]}"; do
  if ldd "$elf" | grep -q "not found"; then
    die "$elf needs libraries this machine lacks: $(ldd "$elf" | grep 'not found' | tr -s ' \t' ' ')"
  fi
  ldd "$elf" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
done | sort -u | while read -r lib; do
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
done

# Users, name resolution, certificates.
cat > "$ROOTFS/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
fleetbench:x:$USER_ID:$USER_ID:fleetbench:/home/fleetbench:/sbin/nologin
EOF
cat > "$ROOTFS/etc/group" <<EOF
root:x:0:
fleetbench:x:$USER_ID:
EOF
printf 'hosts: files dns\npasswd: files\ngroup: files\n' > "$ROOTFS/etc/nsswitch.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
else
  echo "warning: /etc/ssl/certs/ca-certificates.crt not found; the images will not verify TLS servers" >&2
fi

commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then commit="$commit-dirty"; fi

step "images from the $profile binaries"
for component in $COMPONENTS; do
  step "docker build --target $component -t fleetbench/$component:$TAG"
  # Output only on failure (the legacy builder also warns about itself on every build).
  if ! output=$(docker build \
      --file "$ROOT/images/Dockerfile" \
      --target "$component" \
      --label "fleetbench.source-commit=$commit" \
      --tag "fleetbench/$component:$TAG" \
      "$CONTEXT" 2>&1); then
    echo "$output" >&2
    die "docker build of fleetbench/$component:$TAG failed"
  fi
done

# The images must run: every binary starts (its libraries are all there) and git finds
# http-backend through the exec path the git server uses.
step "checking the images run"
docker run --rm "fleetbench/apiserver:$TAG" --version >/dev/null \
  || die "fleetbench does not run in fleetbench/apiserver:$TAG"
docker run --rm "fleetbench/controller:$TAG" --version >/dev/null \
  || die "fleet-controller does not run in fleetbench/controller:$TAG"
exec_path="$(docker run --rm --entrypoint /usr/bin/git "fleetbench/gitserver:$TAG" --exec-path)" \
  || die "git does not run in fleetbench/gitserver:$TAG"
[ "$exec_path" = "$GIT_EXEC" ] \
  || die "git's exec path in fleetbench/gitserver:$TAG is $exec_path, not $GIT_EXEC"
# Without CGI variables http-backend refuses the request, but it must start: docker says
# 125-127 when the program cannot be run at all.
set +e
docker run --rm --entrypoint "$exec_path/git-http-backend" "fleetbench/gitserver:$TAG" >/dev/null 2>&1
status=$?
set -e
case "$status" in
  125|126|127) die "git-http-backend does not run in fleetbench/gitserver:$TAG (docker run exited $status)" ;;
esac

elapsed=$(( $(date +%s) - started ))
step "built in ${elapsed}s (source $commit):"
for component in $COMPONENTS; do
  docker image inspect --format "{{index .RepoTags 0}}  {{.Size}} bytes" "fleetbench/$component:$TAG"
done
