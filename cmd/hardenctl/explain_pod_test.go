package main

import (
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// explainPods runs explain -f on manifests with the built-in policy,
// offline, and returns the exit code and the verdicts (-o json).
func explainPods(t *testing.T, manifests string, extra ...string) (int, []podVerdict, string) {
	t.Helper()
	f := writeFile(t, "pods.yaml", manifests, 0o644)
	code, out, stderr := hardenctl(t, "", append([]string{"explain", "-f", f, "--offline", "--apparmor", "no", "--policy", "builtin", "-o", "json"}, extra...)...)
	var vs []podVerdict
	if code < 2 || code == exitRefused {
		if err := json.Unmarshal([]byte(out), &vs); err != nil {
			t.Fatalf("exit %d: stdout is not the verdicts: %v\n%s\nstderr: %s", code, err, out, stderr)
		}
	}
	return code, vs, stderr
}

func verdict(t *testing.T, vs []podVerdict, pod, ctr string) podVerdict {
	t.Helper()
	for _, v := range vs {
		if v.Pod == pod && v.Container == ctr {
			return v
		}
	}
	t.Fatalf("no verdict for %s %s in %+v", pod, ctr, vs)
	return podVerdict{}
}

const podNonRoot = `
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: shop}
spec:
  runtimeClassName: hardened
  securityContext:
    runAsUser: 1000
    runAsNonRoot: true
    sysctls: [{name: net.ipv4.ping_group_range, value: "0 1000"}]
  containers:
  - name: web
    image: nginx:1.27
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
      seccompProfile: {type: RuntimeDefault}
    volumeMounts: [{name: cache, mountPath: /cache}]
  volumes: [{name: cache, emptyDir: {}}]
`

// TestExplainPodNonRoot: a pod written for Pod Security's restricted runs
// under the default profile, sandbox and container, and its container's
// config is what the kubelet and containerd would hand the shim,
// hardened: uid 1000, the safe sysctl on the sandbox, the emptyDir from
// the kubelet's directory, read-only rootfs. -o json round trips.
func TestExplainPodNonRoot(t *testing.T) {
	code, vs, stderr := explainPods(t, podNonRoot)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sb, web := verdict(t, vs, "shop/app", "(sandbox)"), verdict(t, vs, "shop/app", "web")
	for _, v := range []podVerdict{sb, web} {
		if !v.Runs || !v.Hardened || v.Runtime != "runc" || v.Report == nil || v.Config == nil || v.Profile != v.Report.Profile {
			t.Errorf("%s: %+v", v.Container, v)
		}
	}
	if sb.Config.Linux.Sysctl["net.ipv4.ping_group_range"] != "0 1000" {
		t.Errorf("the pod's sysctl is not on its sandbox: %v", sb.Config.Linux.Sysctl)
	}
	c := web.Config
	if c.Process.User.UID != 1000 || !c.Root.Readonly || !c.Process.NoNewPrivileges {
		t.Errorf("web's process %+v root %+v", c.Process.User, c.Root)
	}
	found := false
	for _, m := range web.Containerd.Mounts {
		if m.Destination == "/cache" && strings.HasPrefix(m.Source, "/var/lib/kubelet/pods/") && strings.Contains(m.Source, "kubernetes.io~empty-dir/cache") {
			found = true
		}
	}
	if !found {
		t.Errorf("no /cache mount from the kubelet's emptyDir: %+v", c.Mounts)
	}
	// The same verdicts in YAML.
	f := writeFile(t, "pods.yaml", podNonRoot, 0o644)
	code, out, _ := hardenctl(t, "", "explain", "-f", f, "--offline", "--apparmor", "no", "--policy", "builtin", "-o", "yaml")
	var again []podVerdict
	if err := yaml.Unmarshal([]byte(out), &again); code != 0 || err != nil || len(again) != len(vs) || again[1].Profile != web.Profile {
		t.Errorf("-o yaml: exit %d, %v, %d verdicts", code, err, len(again))
	}
}

// TestExplainPodRefusals: a hostPath the profile never mounts refuses
// its container (and only it), a privileged host-network pod's sandbox is
// refused with its containers, an unsafe sysctl refuses the sandbox; exit
// 3, each reason naming its rule.
func TestExplainPodRefusals(t *testing.T) {
	code, vs, _ := explainPods(t, `
apiVersion: v1
kind: Pod
metadata: {name: docker}
spec:
  runtimeClassName: hardened
  initContainers: [{name: init, image: busybox, command: ["true"]}]
  containers:
  - name: ci
    image: busybox
    volumeMounts: [{name: sock, mountPath: /var/run/docker.sock}]
  volumes: [{name: sock, hostPath: {path: /var/run/docker.sock}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      runtimeClassName: hardened
      hostNetwork: true
      containers: [{name: agent, image: busybox, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Pod
metadata: {name: tuned}
spec:
  runtimeClassName: hardened
  securityContext: {sysctls: [{name: kernel.msgmax, value: "65536"}]}
  containers: [{name: c, image: busybox}]
`)
	if code != exitRefused {
		t.Fatalf("exit %d, want %d", code, exitRefused)
	}
	if v := verdict(t, vs, "default/docker", "init"); !v.Runs || !v.Init {
		t.Errorf("the init container is refused with its sibling: %+v", v)
	}
	if v := verdict(t, vs, "default/docker", "ci"); v.Runs || !strings.Contains(v.Refused, `host path "/var/run/docker.sock"`) || !strings.Contains(v.Refused, "mounts") {
		t.Errorf("docker.sock: %+v", v)
	}
	if v := verdict(t, vs, "default/agent-explain", "(sandbox)"); v.Runs || !strings.Contains(v.Refused, "no network namespace") {
		t.Errorf("host-network sandbox: %+v", v)
	}
	if v := verdict(t, vs, "default/agent-explain", "agent"); v.Runs || v.Refused != "its pod sandbox is refused" {
		t.Errorf("container of a refused sandbox: %+v", v)
	}
	if v := verdict(t, vs, "default/tuned", "(sandbox)"); v.Runs || !strings.Contains(v.Refused, "kernel.msgmax") {
		t.Errorf("unsafe sysctl: %+v", v)
	}
}

// TestExplainPodHandlersAndProfiles: a RuntimeClass in the input maps
// runtimeClassName to its handler; a pod on another handler (or none) is
// not decided and does not fail the run; a pod annotation names a
// stricter profile (strict: non-root, on gVisor), which reaches the spec as
// containerd's pod_annotations would pass it.
func TestExplainPodHandlersAndProfiles(t *testing.T) {
	code, vs, stderr := explainPods(t, `
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: secure}
handler: hardened
---
apiVersion: v1
kind: Pod
metadata: {name: strict, annotations: {hardened.dev/profile: strict}}
spec:
  runtimeClassName: secure
  securityContext: {runAsUser: 1000}
  containers: [{name: c, image: busybox, command: [sleep, "1"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: stock}
spec:
  containers: [{name: c, image: busybox}]
`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if v := verdict(t, vs, "default/strict", "c"); !v.Runs || v.Handler != "hardened" || v.Profile != "strict" || v.Runtime != "gvisor" {
		t.Errorf("pod on RuntimeClass secure with profile strict: %+v", v)
	}
	if v := verdict(t, vs, "default/stock", "(pod)"); v.Hardened || !v.Runs || len(v.Notes) != 1 {
		t.Errorf("pod without runtimeClassName: %+v", v)
	}
}

// TestExplainPodUsage: -f takes no spec argument nor the flags a pod
// states itself; a manifest with an unknown field is invalid (exit 2).
func TestExplainPodUsage(t *testing.T) {
	f := writeFile(t, "pods.yaml", podNonRoot, 0o644)
	for _, args := range [][]string{
		{"explain", "-f", f, "spec.json"},
		{"explain", "-f", f, "--diff"},
		{"explain", "-f", f, "--profile", "strict"},
	} {
		if code, _, stderr := hardenctl(t, "", args...); code != exitInvalid || !strings.Contains(stderr, "usage") {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
	bad := writeFile(t, "bad.yaml", strings.Replace(podNonRoot, "runAsNonRoot", "runAsNonRut", 1), 0o644)
	if code, _, stderr := hardenctl(t, "", "explain", "-f", bad, "--offline", "--policy", "builtin"); code != exitInvalid || !strings.Contains(stderr, "runAsNonRut") {
		t.Errorf("unknown field: exit %d, %s", code, stderr)
	}
}
