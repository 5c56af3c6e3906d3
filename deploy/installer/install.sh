#!/bin/sh
# hardened node installer: puts containerd-shim-hardened-v2, its runsc
# wrapper hardened-runsc (and runsc), the node policies and a containerd drop-in on a node, so that the CRI plugin
# knows the runtimes "hardened" and "hardened-gvisor".
#
#   install.sh install     install or update; restart containerd if its
#                          drop-in changed (RESTART_CONTAINERD=true)
#   install.sh uninstall   remove the drop-in (restart containerd), then the
#                          binaries and policies
#
# It runs in the DaemonSet deploy/manifests/20-daemonset.yaml, with the
# host's directories mounted under HOST_ROOT, and in integration/cri (with
# HOST_ROOT="" and every path in a temporary directory). POSIX sh + busybox.
#
# Environment (defaults in brackets). Paths are as the HOST sees them;
# files are written to $HOST_ROOT$path.
#   HOST_ROOT                where the host's / is mounted [/host]
#   SRC_BIN_DIR              shim, hardened-runsc and runsc to install
#                            [/opt/hardened/bin]
#   CONFIG_DIR               policy.toml, policy-gvisor.toml,
#                            containerd-hardened.toml (the ConfigMap) [/config]
#   BIN_DIR                  where they go [/opt/hardened/bin]
#   ETC_DIR                  where the policies go [/etc/hardened]
#   CONTAINERD_CONFIG        containerd's main config [/etc/containerd/config.toml]
#   DROPIN_DIR               containerd's drop-in directory [/etc/containerd/conf.d]
#   PATCH_CONTAINERD_CONFIG  true: add the imports line to a main config that
#                            has none (keeps a .hardened.bak copy) [false]
#   RESTART_CONTAINERD       true: restart containerd (systemd, via nsenter
#                            into PID 1; needs hostPID) when the drop-in
#                            changed [true]
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
PATCH_CONTAINERD_CONFIG=${PATCH_CONTAINERD_CONFIG:-false}
RESTART_CONTAINERD=${RESTART_CONTAINERD:-true}

DEFAULT_BIN_DIR=/opt/hardened/bin
DEFAULT_ETC_DIR=/etc/hardened
SHIM=containerd-shim-hardened-v2
# The shim's runsc wrapper: the shim looks for it next to its own binary.
WRAPPER=hardened-runsc
DROPIN=hardened.toml

log() { echo "hardened-install: $*" >&2; }
die() { log "error: $*"; exit 1; }

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
		return
	fi
	log "restarting containerd (running containers keep running: their shims outlive it)"
	nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd ||
		die "could not restart containerd: restart it on the node (systemctl restart containerd)"
}

do_install() {
	for f in "$SRC_BIN_DIR/$SHIM" "$SRC_BIN_DIR/$WRAPPER" "$CONFIG_DIR/policy.toml" "$CONFIG_DIR/policy-gvisor.toml" "$CONFIG_DIR/containerd-hardened.toml"; do
		[ -f "$f" ] || die "$f is missing"
	done
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
	log "installed $BIN_DIR/$SHIM, $BIN_DIR/$WRAPPER, $ETC_DIR/policy.toml (runtime hardened), $ETC_DIR/policy-gvisor.toml (runtime hardened-gvisor), $DROPIN_DIR/$DROPIN"
	if [ "$CHANGED" = true ]; then
		restart_containerd
	else
		log "containerd's config is unchanged: no restart"
	fi
}

do_uninstall() {
	dst="$HOST_ROOT$DROPIN_DIR/$DROPIN"
	if [ -e "$dst" ]; then
		rm -f "$dst"
		# Pods still using the runtimes keep running; new ones are refused.
		restart_containerd
	fi
	rm -f "$HOST_ROOT$BIN_DIR/$SHIM" "$HOST_ROOT$BIN_DIR/$WRAPPER" "$HOST_ROOT$BIN_DIR/runsc" \
		"$HOST_ROOT$ETC_DIR/policy.toml" "$HOST_ROOT$ETC_DIR/policy-gvisor.toml"
	rmdir "$HOST_ROOT$BIN_DIR" "$HOST_ROOT$ETC_DIR/profiles" "$HOST_ROOT$ETC_DIR" 2>/dev/null || true
	log "uninstalled (left $CONTAINERD_CONFIG as it is)"
}

case "${1:-install}" in
install) do_install ;;
uninstall) do_uninstall ;;
*) die "usage: $0 [install|uninstall]" ;;
esac
