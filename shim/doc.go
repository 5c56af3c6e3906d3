// Package shim is containerd-shim-hardened-v2 (runtime type
// io.containerd.hardened.v2): containerd's runc shim, wrapped. It knows
// containerd; it knows no hardening rule (package hardening does) and
// decides nothing itself (package decide does): it gathers facts and
// carries plans out.
//
// # Shape
//
// The stock runc shim is reused, not forked: NewManager wraps
// cmd/containerd-shim-runc-v2/manager and Service wraps the task service
// of cmd/containerd-shim-runc-v2/task (registered as the TTRPC "task"
// plugin by shim/plugin, in place of the stock task/plugin). IO, exit
// handling, OOM events, pod grouping, checkpoints and `delete` are the
// stock code's. The wrapper changes:
//
//   - Manager.Start/Info: runtime options. containerd sends this runtime
//     type runtimeoptions/v1.Options (ConfigPath, ConfigBody) from `ctr run
//     --runtime-config-path` and CRI's per-runtime `options` table; the
//     stock code reads runc options.Options only (Info fails on anything
//     else). They are translated first (options.go).
//   - Service.Create (create.go): gathers the facts: the node policy
//     (cached per file identity, nodepolicy.go), the container's labels,
//     its pod sandbox's labels and its image's config labels from
//     containerd (labels.go, raw API clients), the pod sandbox's record
//     (pod.go), the host (package hostfacts: the policy's runtimes, the
//     runc gate, namespace identities). decide.Decide decides; Create
//     loads the AppArmor profile the plan names, pins the host paths (pin.go:
//     opened without symlinks, judged by decide, staged, staging.go),
//     writes config.json atomically (original kept once as
//     config.json.orig) with hardening-report.json and hardening-state.json
//     (bundle.go), then hands the stock Create runc options naming the OCI
//     binary. Every check comes before any write, so a refusal leaves
//     nothing behind.
//   - Service.Start (start.go): a runc container's init process, in the
//     created state, is inspected (package leakcheck) for descriptors that
//     would survive exec and a root or working directory outside the
//     container (CVE-2024-21626 class); a refused one is killed before the
//     stock Start runs it.
//   - Service.Exec (exec.go): the process containerd sends is built from
//     its own, unhardened spec; it is hardened against the container's
//     hardened spec.
//   - Service.Update (update.go): the pids limit may go down, never up or
//     away.
//
// # Runtimes
//
// runc: options.BinaryName is the policy's runc (absolute, or looked up in
// the shim's PATH), checked by hostprobe.GateRunc (cached by binary
// identity, so nothing is exec'd on a start but the first). gVisor:
// BinaryName is the runsc wrapper (hostfacts.Runtimes, package runscwrap): a small
// binary of its own, hardened-runsc, installed next to the shim binary (or
// in PATH; missing, gVisor containers are refused), reached through a
// symlink named hardened-runsc in a directory holding its configuration.
// go-runc runs it for every runsc call, so it imports no more than the
// standard library and x/sys. It adds --oci-seccomp and the policy's
// runsc flags and bridges what the runc shim code expects of runc and
// runsc does differently: it gives a pod's app container a waiter process
// whose exit is the container's (runsc's pid file names the pod's sandbox
// process) and which keeps the container's stdio from create to start
// (runsc hands `runsc start`'s stdio to an app container, and go-runc
// starts it on a pipe of its own), and words a kill of a stopped container
// as runc does. One
// runtime per pod: a CRI sandbox's report records it and the pod's
// containers must agree. `delete` (Manager.Stop, after a shim died) reads
// the binary and root the stock code recorded in the bundle (files
// "runtime", options.json), so it reaches the runtime the container ran on.
//
// # Files
//
// In each bundle: config.json (hardened, enforce mode), config.json.orig,
// hardening-report.json, hardening-state.json. Node-wide, under RunDir
// (/run/containerd-hardened, or $HARDENED_RUN_DIR as containerd's
// environment gives it): runsc/<hash>/{hardened-runsc,runsc.json,waiters/} (the
// first a symlink to the wrapper binary, the last the pids of app
// containers' waiters, each removed when its waiter exits), runc-gate/ (the gate's cache) and
// staging/<namespace>/<container-id>/ (a container's pinned mount sources
// while its runtime opens them, pin.go). runsc's state root defaults to
// /run/containerd/runsc; runc's stays the stock /run/containerd/runc.
//
// # containerd versions
//
// Built on containerd v2.4.2's pkg/shim, which speaks the bootstrap
// protocol of containerd 2.3+ (BootstrapParams on stdin): containerd 2.3
// and later.
package shim
