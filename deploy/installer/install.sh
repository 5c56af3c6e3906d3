#!/bin/sh
# hardened node installer: puts containerd-shim-hardened-v2, its runsc
# wrapper hardened-runsc (and runsc), hardenctl, the node policies and a
# containerd drop-in on a node, so that the CRI plugin knows the runtimes
# "hardened" and "hardened-gvisor"; then proves the install before it lets
# pods onto the node.
#
#   install.sh install     check containerd (2.3 or later), install or
#                          update, restart containerd if its drop-in
#                          changed, verify (hardenctl check-host with the
#                          node policies; the CRI lists both handlers; one
#                          container runs under each), then label the node
#                          hardened.dev/ready=true and hardened.dev/version.
#                          On any failure: the labels are taken off, a
#                          Warning event InstallFailed says why, exit 1.
#   install.sh uninstall   take the labels off, wait until no container runs
#                          on the hardened shim (or refuse, with the list),
#                          remove the drop-in, restart containerd, remove the
#                          binaries and policies.
#
# It runs in the DaemonSet of deploy/base (as root, privileged, hostPID,
# with the host's directories mounted under HOST_ROOT), and in the tests
# (integration/cri: the image against a stand-in node; HOST_ROOT="" with
# every path in a temporary directory). POSIX sh + busybox.
#
# Environment (defaults in brackets). Paths are as the HOST sees them;
# files are written to $HOST_ROOT$path.
#   HOST_ROOT                where the host's / is mounted [/host]
#   SRC_BIN_DIR              shim, hardened-runsc, runsc and hardenctl to
#                            install [/opt/hardened/bin]
#   CONFIG_DIR               policy.toml, policy-gvisor.toml,
#                            containerd-hardened.toml (the ConfigMap) [/config]
#   BIN_DIR                  where they go [/opt/hardened/bin]
#   ETC_DIR                  where the policies go [/etc/hardened]
#   CONTAINERD_CONFIG        containerd's main config [/etc/containerd/config.toml]
#   DROPIN_DIR               containerd's drop-in directory [/etc/containerd/conf.d]
#   CONTAINERD_SOCKET        containerd's socket [/run/containerd/containerd.sock]
#   PATCH_CONTAINERD_CONFIG  true: add the imports line to a main config that
#                            has none (keeps a .hardened.bak copy) [false]
#   RESTART_CONTAINERD       true: restart containerd when the drop-in
#                            changed, with RESTART_COMMAND run in the node's
#                            namespaces (nsenter into NODE_PID; needs hostPID
#                            and privileged) [true]
#   RESTART_COMMAND          [systemctl restart containerd]; it must return
#                            once the old containerd has stopped
#   NODE_PID                 a process in the node's namespaces [1]
#   NODE_PATH                PATH on the node, to find runc and runsc as
#                            containerd's shims do
#                            [/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin]
#   VERIFY                   true: preflight and verify (needs containerd's
#                            socket); false: only place the files [true]
#   VERIFY_HANDLERS          runtime handlers to verify [hardened,hardened-gvisor]
#   POD_UID                  this pod's UID (the DaemonSet sets it from
#                            metadata.uid): the verification containers run
#                            this pod's install container's image (the
#                            kubelet has pulled it), found through the CRI
#   VERIFY_IMAGE             another image for them (already on the node)
#   VERIFY_LOG_DIR           where their logs go (node path) [/opt/hardened/verify]
#   NODE_NAME                the node to label (the DaemonSet sets it from
#                            spec.nodeName); unset: no labels, no events
#   VERSION                  the label value [the version of this image]
#   EVENT_NAMESPACE          where events about the node go [default: the
#                            API server keeps events about cluster-scoped
#                            objects in default or kube-system]
#   UNINSTALL_TIMEOUT        seconds uninstall waits for hardened containers
#                            to end before it refuses [300]
# A BIN_DIR or ETC_DIR other than the default is written into the installed
# drop-in and policies (for nodes where /opt is read-only). The `hardened`
# runtime has no options table (so that user-namespaced pods can start): its
# shim reads /etc/hardened/policy.toml, or $HARDENED_POLICY. With another
# ETC_DIR the drop-in also sets HARDENED_POLICY=$ETC_DIR/policy.toml for
# containerd's shims ([plugins."io.containerd.shim.v1.manager"] env).
set -eu

HOST_ROOT=${HOST_ROOT-/host}
SRC_BIN_DIR=${SRC_BIN_DIR:-/opt/hardened/bin}
CONFIG_DIR=${CONFIG_DIR:-/config}
BIN_DIR=${BIN_DIR:-/opt/hardened/bin}
ETC_DIR=${ETC_DIR:-/etc/hardened}
CONTAINERD_CONFIG=${CONTAINERD_CONFIG:-/etc/containerd/config.toml}
DROPIN_DIR=${DROPIN_DIR:-/etc/containerd/conf.d}
CONTAINERD_SOCKET=${CONTAINERD_SOCKET:-/run/containerd/containerd.sock}
PATCH_CONTAINERD_CONFIG=${PATCH_CONTAINERD_CONFIG:-false}
RESTART_CONTAINERD=${RESTART_CONTAINERD:-true}
RESTART_COMMAND=${RESTART_COMMAND:-systemctl restart containerd}
NODE_PID=${NODE_PID:-1}
NODE_PATH=${NODE_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}
VERIFY=${VERIFY:-true}
VERIFY_HANDLERS=${VERIFY_HANDLERS:-hardened,hardened-gvisor}
VERIFY_IMAGE=${VERIFY_IMAGE:-}
POD_UID=${POD_UID:-}
VERIFY_LOG_DIR=${VERIFY_LOG_DIR:-/opt/hardened/verify}
NODE_NAME=${NODE_NAME:-}
EVENT_NAMESPACE=${EVENT_NAMESPACE:-default}
UNINSTALL_TIMEOUT=${UNINSTALL_TIMEOUT:-300}
# The reason of the Warning event a failure records.
FAIL_REASON=InstallFailed

DEFAULT_BIN_DIR=/opt/hardened/bin
DEFAULT_ETC_DIR=/etc/hardened
SHIM=containerd-shim-hardened-v2
# The shim's runsc wrapper: the shim looks for it next to its own binary.
WRAPPER=hardened-runsc
CLI=hardenctl
DROPIN=hardened.toml
# hardenctl of this image: it talks to containerd and the API server.
HARDENCTL="$SRC_BIN_DIR/$CLI"
SOCK="$HOST_ROOT$CONTAINERD_SOCKET"

log() { echo "hardened-install: $*" >&2; }

# event TYPE REASON MESSAGE: record an event on the node (when NODE_NAME is
# set); a failure to record it is logged, not fatal.
event() {
	[ -n "$NODE_NAME" ] || return 0
	"$HARDENCTL" node event --node "$NODE_NAME" --namespace "$EVENT_NAMESPACE" \
		--type "$1" --reason "$2" --message "$3" ||
		log "could not record event $2 on node $NODE_NAME"
}

# unlabel: take the installer's labels off the node (when NODE_NAME is set).
unlabel() {
	[ -n "$NODE_NAME" ] || return 0
	"$HARDENCTL" node unlabel --node "$NODE_NAME" >&2
}

# fail MESSAGE: the install did not prove itself. The node must not take
# hardened pods: take the labels off, say why in an event, stop.
fail() {
	log "error: $*"
	if [ -n "$NODE_NAME" ]; then
		unlabel || log "could not take the labels off node $NODE_NAME"
		event Warning "$FAIL_REASON" "$*"
	fi
	exit 1
}

# die MESSAGE: stop before anything was changed on the node.
die() {
	log "error: $*"
	event Warning "$FAIL_REASON" "$*"
	exit 1
}

# on_node CMD...: run a command as the node runs it: in NODE_PID's
# namespaces with the node's PATH (when HOST_ROOT is "", this process is
# on the node already).
on_node() {
	if [ -z "$HOST_ROOT" ]; then
		env PATH="$NODE_PATH" "$@"
	else
		nsenter -t "$NODE_PID" -m -u -i -n -p -- env PATH="$NODE_PATH" "$@"
	fi
}

# version: the label value: this image's release, as hardenctl reports it.
version() {
	if [ -n "${VERSION:-}" ]; then
		echo "$VERSION"
		return
	fi
	"$HARDENCTL" version | sed -n '1s/^hardenctl \([^ ]*\).*/\1/p' | tr -c 'A-Za-z0-9_.\n-' '_' | cut -c1-63
}

# install_file SRC DST MODE: write DST atomically (a running shim keeps its
# old binary: rename replaces the directory entry, not the file).
install_file() {
	tmp="$2.hardened-tmp.$$"
	cp "$1" "$tmp"
	chmod "$3" "$tmp"
	mv -f "$tmp" "$2"
}

# relocate FILE: rewrite the default install paths into the configured ones.
relocate() {
	sed -e "s#$DEFAULT_BIN_DIR#$BIN_DIR#g" -e "s#$DEFAULT_ETC_DIR#$ETC_DIR#g" "$1"
}

# check_imports: containerd reads the drop-in only through `imports` in its
# main config. Make sure it does, or stop with what to change.
check_imports() {
	conf="$HOST_ROOT$CONTAINERD_CONFIG"
	pattern="$DROPIN_DIR/*.toml"
	if [ ! -e "$conf" ]; then
		# No main config: containerd runs on its defaults. A config holding
		# only the import keeps those defaults and adds the drop-ins.
		log "$CONTAINERD_CONFIG does not exist: creating it with imports = [\"$pattern\"]"
		mkdir -p "$(dirname "$conf")"
		printf 'version = 3\nimports = ["%s"]\n' "$pattern" >"$conf"
		return
	fi
	version=$(sed -n 's/^[[:space:]]*version[[:space:]]*=[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$conf" | head -n 1)
	if [ -z "$version" ] || [ "$version" -lt 3 ]; then
		die "$CONTAINERD_CONFIG is config version ${version:-1}: the hardened shim needs containerd 2.3+ with a version 3 (or later) config"
	fi
	if grep -Eq '^[[:space:]]*imports[[:space:]]*=' "$conf"; then
		if grep -E '^[[:space:]]*imports[[:space:]]*=' "$conf" | grep -Fq "$DROPIN_DIR/"; then
			return
		fi
		die "$CONTAINERD_CONFIG has an imports list without $DROPIN_DIR: add \"$pattern\" to it"
	fi
	if [ "$PATCH_CONTAINERD_CONFIG" != true ]; then
		die "$CONTAINERD_CONFIG imports no drop-ins: add the line imports = [\"$pattern\"] at its top (or set PATCH_CONTAINERD_CONFIG=true)"
	fi
	log "adding imports = [\"$pattern\"] to $CONTAINERD_CONFIG (copy in $CONTAINERD_CONFIG.hardened.bak)"
	cp "$conf" "$conf.hardened.bak"
	# Top-level keys must come before the first table: put it first.
	{ printf 'imports = ["%s"]\n' "$pattern"; cat "$conf.hardened.bak"; } >"$conf.hardened-tmp.$$"
	mv -f "$conf.hardened-tmp.$$" "$conf"
	CHANGED=true
}

# shim_env: print the drop-in table that points the `hardened` runtime's
# shim at $ETC_DIR/policy.toml (only for an ETC_DIR other than the default).
# containerd takes that env list from one file only (a later file replaces
# it, checked with `containerd config dump`): when the main config or
# another drop-in has the table, print nothing if it already sets the
# variable, else stop with what to add.
shim_env() {
	want="HARDENED_POLICY=$ETC_DIR/policy.toml"
	for f in "$HOST_ROOT$CONTAINERD_CONFIG" "$HOST_ROOT$DROPIN_DIR"/*.toml; do
		[ -f "$f" ] && [ "$f" != "$HOST_ROOT$DROPIN_DIR/$DROPIN" ] || continue
		if grep -v '^[[:space:]]*#' "$f" | grep -Fq 'io.containerd.shim.v1.manager'; then
			if grep -v '^[[:space:]]*#' "$f" | grep -Fq -e "\"$want\"" -e "'$want'"; then
				return 0
			fi
			die "${f#"$HOST_ROOT"} configures plugin io.containerd.shim.v1.manager: add \"$want\" to its env list (ETC_DIR is not $DEFAULT_ETC_DIR, and the hardened runtime finds its policy through that variable)"
		fi
	done
	printf '\n# Added by install.sh: ETC_DIR is %s, not %s. The shims of the\n# `hardened` runtime (no options table) read the node policy from here.\n[plugins."io.containerd.shim.v1.manager"]\n  env = ["%s"]\n' \
		"$ETC_DIR" "$DEFAULT_ETC_DIR" "$want"
}

restart_containerd() {
	if [ "$RESTART_CONTAINERD" != true ]; then
		log "containerd's config changed: restart containerd to load it (RESTART_CONTAINERD=$RESTART_CONTAINERD)"
		return 1
	fi
	log "restarting containerd: $RESTART_COMMAND (running containers keep running: their shims outlive it)"
	on_node /bin/sh -c "$RESTART_COMMAND" ||
		fail "could not restart containerd ($RESTART_COMMAND): restart it on the node"
	return 0
}

# wait_containerd: until the CRI answers again after a restart (60 s).
wait_containerd() {
	i=0
	until "$HARDENCTL" node preflight --address "$SOCK" >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 120 ] || fail "containerd did not serve on $CONTAINERD_SOCKET within 60s of its restart"
		sleep 0.5
	done
}

# preflight: containerd answers on its socket and is 2.3 or later. Nothing
# is installed on a node that fails it.
preflight() {
	[ -x "$HARDENCTL" ] || die "$HARDENCTL is missing"
	out=$("$HARDENCTL" node preflight --address "$SOCK" 2>&1) || die "preflight: ${out#hardenctl: }"
	log "preflight: $out"
}

# verify: what must hold before the node takes hardened pods.
verify() {
	# The node policies, as the shims will read them, on the node's
	# kernel, runc and runsc: check-host exits 3 when they cannot be
	# honoured there (a runc with a known escape, no seccomp, ...).
	for p in policy.toml policy-gvisor.toml; do
		out=$(on_node "$BIN_DIR/$CLI" check-host --policy "$ETC_DIR/$p" 2>&1) ||
			fail "hardenctl check-host --policy $ETC_DIR/$p: $(echo "$out" | grep -E '^  - |^hardenctl:' | tr '\n' ' ')"
	done
	log "check-host: the node can honour $ETC_DIR/policy.toml and policy-gvisor.toml"
	if [ -n "$VERIFY_IMAGE" ]; then
		set -- --image "$VERIFY_IMAGE"
	elif [ -n "$POD_UID" ]; then
		set -- --pod-uid "$POD_UID" --container install
	else
		fail "neither POD_UID nor VERIFY_IMAGE is set: no image to run the verification containers"
	fi
	out=$("$HARDENCTL" node verify --address "$SOCK" --handler "$VERIFY_HANDLERS" "$@" \
		--log-dir "$VERIFY_LOG_DIR" --host-root "$HOST_ROOT" 2>&1) ||
		fail "verify: $(echo "$out" | tr '\n' ' ')"
	echo "$out" | while read -r l; do log "verify: $l"; done
}

do_install() {
	for f in "$SRC_BIN_DIR/$SHIM" "$SRC_BIN_DIR/$WRAPPER" "$SRC_BIN_DIR/$CLI" "$CONFIG_DIR/policy.toml" "$CONFIG_DIR/policy-gvisor.toml" "$CONFIG_DIR/containerd-hardened.toml"; do
		[ -f "$f" ] || die "$f is missing"
	done
	if [ "$VERIFY" = true ]; then
		preflight
	fi
	CHANGED=false
	check_imports

	# The drop-in first: shim_env may stop the install before anything is
	# written.
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	relocate "$CONFIG_DIR/containerd-hardened.toml" >"$work/$DROPIN"
	if [ "$ETC_DIR" != "$DEFAULT_ETC_DIR" ]; then
		shim_env >>"$work/$DROPIN"
	fi

	mkdir -p "$HOST_ROOT$BIN_DIR" "$HOST_ROOT$ETC_DIR/profiles" "$HOST_ROOT$DROPIN_DIR"
	install_file "$SRC_BIN_DIR/$WRAPPER" "$HOST_ROOT$BIN_DIR/$WRAPPER" 0755
	install_file "$SRC_BIN_DIR/$SHIM" "$HOST_ROOT$BIN_DIR/$SHIM" 0755
	install_file "$SRC_BIN_DIR/$CLI" "$HOST_ROOT$BIN_DIR/$CLI" 0755
	if [ -f "$SRC_BIN_DIR/runsc" ]; then
		install_file "$SRC_BIN_DIR/runsc" "$HOST_ROOT$BIN_DIR/runsc" 0755
	else
		log "no runsc in $SRC_BIN_DIR: gVisor pods will fail until $BIN_DIR/runsc exists"
	fi

	for p in policy.toml policy-gvisor.toml; do
		relocate "$CONFIG_DIR/$p" >"$work/$p"
		install_file "$work/$p" "$HOST_ROOT$ETC_DIR/$p" 0644
	done

	dst="$HOST_ROOT$DROPIN_DIR/$DROPIN"
	if ! cmp -s "$work/$DROPIN" "$dst"; then
		install_file "$work/$DROPIN" "$dst" 0644
		CHANGED=true
	fi
	log "installed $BIN_DIR/$SHIM, $BIN_DIR/$WRAPPER, $BIN_DIR/$CLI, $ETC_DIR/policy.toml (runtime hardened), $ETC_DIR/policy-gvisor.toml (runtime hardened-gvisor), $DROPIN_DIR/$DROPIN"
	restarted=false
	if [ "$CHANGED" = true ]; then
		if restart_containerd; then
			restarted=true
		fi
	else
		log "containerd's config is unchanged: no restart"
	fi
	if [ "$VERIFY" != true ]; then
		log "not verified (VERIFY=$VERIFY): the node is not labelled"
		return
	fi
	if [ "$CHANGED" = true ] && [ "$restarted" != true ]; then
		fail "containerd has not loaded the new drop-in (RESTART_CONTAINERD=$RESTART_CONTAINERD): restart it, then run the installer again"
	fi
	[ "$restarted" != true ] || wait_containerd
	verify
	v=$(version)
	if [ -n "$NODE_NAME" ]; then
		"$HARDENCTL" node label --node "$NODE_NAME" --version "$v" >&2 ||
			fail "could not label node $NODE_NAME"
		event Normal Installed "hardened $v installed and verified: handlers $VERIFY_HANDLERS"
	fi
	log "done: hardened $v installed and verified"
}

do_uninstall() {
	FAIL_REASON=UninstallFailed
	# First no new pods: the RuntimeClasses schedule on the label.
	if [ -n "$NODE_NAME" ]; then
		unlabel || { log "error: could not take the labels off node $NODE_NAME"; exit 1; }
	fi
	# Then wait for the containers still running on the shim: their shims
	# run the binaries and read the policies about to go.
	if [ -S "$SOCK" ]; then
		waited=0
		while ! out=$("$HARDENCTL" node shims --address "$SOCK" 2>&1); do
			case "$out" in
			*"still run on the hardened shim"*) ;;
			*) log "error: cannot list the hardened shims: $out"; exit 1 ;;
			esac
			if [ "$waited" -ge "$UNINSTALL_TIMEOUT" ]; then
				msg="refusing to uninstall: containers still run on the hardened shim after ${UNINSTALL_TIMEOUT}s (delete or move their pods, then run the uninstaller again): $(echo "$out" | grep -v '^hardenctl:' | tr '\n' ';')"
				log "error: $msg"
				event Warning UninstallBlocked "$msg"
				exit 1
			fi
			[ "$waited" -gt 0 ] || log "waiting up to ${UNINSTALL_TIMEOUT}s for the containers on the hardened shim to end: $(echo "$out" | grep -v '^hardenctl:' | tr '\n' ';')"
			sleep 2
			waited=$((waited + 2))
		done
	else
		log "no containerd socket at $CONTAINERD_SOCKET: not checking for running shims"
	fi
	dst="$HOST_ROOT$DROPIN_DIR/$DROPIN"
	if [ -e "$dst" ]; then
		rm -f "$dst"
		if restart_containerd && [ -S "$SOCK" ]; then
			wait_containerd
		fi
	fi
	rm -f "$HOST_ROOT$BIN_DIR/$SHIM" "$HOST_ROOT$BIN_DIR/$WRAPPER" "$HOST_ROOT$BIN_DIR/runsc" "$HOST_ROOT$BIN_DIR/$CLI" \
		"$HOST_ROOT$ETC_DIR/policy.toml" "$HOST_ROOT$ETC_DIR/policy-gvisor.toml"
	rmdir "$HOST_ROOT$VERIFY_LOG_DIR" "$HOST_ROOT$BIN_DIR" "$HOST_ROOT$ETC_DIR/profiles" "$HOST_ROOT$ETC_DIR" 2>/dev/null || true
	event Normal Uninstalled "hardened uninstalled"
	log "uninstalled (left $CONTAINERD_CONFIG as it is)"
}

case "${1:-install}" in
install) do_install ;;
uninstall) do_uninstall ;;
*) die "usage: $0 [install|uninstall]" ;;
esac
