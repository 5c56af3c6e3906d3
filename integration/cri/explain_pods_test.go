//go:build integration

package cri

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/kube"
	"github.com/hardened-dev/hardened/internal/reports"
)

// explainManifests are the pods of TestCRIExplainPods: %[1]s is the
// test's busybox image, %[2]s a host path the test policy consents to
// read-only.
const explainManifests = `
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: secure}
handler: hardened
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot, namespace: hd-explain, annotations: {hardened.dev/profile: restricted}}
spec:
  runtimeClassName: secure
  securityContext:
    runAsUser: 1000
    runAsGroup: 1000
    runAsNonRoot: true
    sysctls: [{name: kernel.shm_rmid_forced, value: "1"}]
  initContainers:
  - {name: init, image: %[1]q, command: ["true"]}
  containers:
  - name: app
    image: %[1]q
    command: [sleep, "3600"]
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
      seccompProfile: {type: RuntimeDefault}
    volumeMounts: [{name: cache, mountPath: /cache}]
  volumes: [{name: cache, emptyDir: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: hostpath, namespace: hd-explain}
spec:
  runtimeClassName: hardened
  containers:
  - name: reader
    image: %[1]q
    command: [sleep, "3600"]
    volumeMounts: [{name: ro, mountPath: /data, readOnly: true}]
  - name: etc
    image: %[1]q
    command: [sleep, "3600"]
    volumeMounts: [{name: etc, mountPath: /host-etc}]
  volumes:
  - {name: ro, hostPath: {path: %[2]q}}
  - {name: etc, hostPath: {path: /etc}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: privileged, namespace: hd-explain}
spec:
  selector: {matchLabels: {app: priv}}
  template:
    metadata: {labels: {app: priv, hardened.dev/untrusted: "true"}}
    spec:
      runtimeClassName: hardened
      containers:
      - {name: priv, image: %[1]q, command: [sleep, "3600"], securityContext: {privileged: true}}
---
apiVersion: v1
kind: Pod
metadata: {name: hostnet, namespace: hd-explain}
spec:
  runtimeClassName: hardened
  hostNetwork: true
  containers:
  - {name: c, image: %[1]q, command: [sleep, "3600"]}
`

// criOutcome is what containerd's CRI and the shim did with one sandbox
// or container: whether it started, the CRI error, the kept report.
type criOutcome struct {
	started bool
	err     string
	report  *decide.Report
}

// TestCRIExplainPods: hardenctl explain -f says, for each container of
// the manifests, what the shim then does with the same pod through
// containerd's CRI: the pods are decoded once (package kube, the kubelet's
// requests), explained by the hardenctl binary against this containerd
// (its image store, its CRI directories, the installed node policy), and
// run with crictl on the hardened handler. Per sandbox and container the
// outcome must agree: started or refused, and then the refusal's reason;
// the profile, the runtime and the fields the hardening changed (rule and
// field, in order) from the kept report. The pods cover hostPath (a
// consented read-only one, /etc refused), privileged (routed to gVisor by
// a label), sysctls, a non-root security context under restricted, a
// RuntimeClass mapping and a host-network pod.
func TestCRIExplainPods(t *testing.T) {
	e := env(t)
	needShim(t, e)
	if e.CLI == "" {
		t.Fatal("hardenctl was not built with the shim")
	}
	roDir := filepath.Join(e.Dir, hostRODir, "explain")
	if err := os.MkdirAll(roDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	manifest := filepath.Join(dir, "pods.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(explainManifests, imageBusybox, roDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := kube.Options{KubeletRoot: filepath.Join(e.Dir, kubeletDir), PodLogsRoot: filepath.Join(e.Dir, "pods"), CgroupParent: e.CgroupParent}

	// What explain says.
	cmd := exec.Command(e.CLI, "explain", "-f", manifest, "-o", "json", "--apparmor", "no",
		"--policy", e.nodePolicy(), "--address", e.Sock, "--pause-image", imagePause,
		"--cri-root", filepath.Join(e.Dir, "root/io.containerd.grpc.v1.cri"), "--cri-state", filepath.Join(e.Dir, "state/io.containerd.grpc.v1.cri"),
		"--kubelet-root", opts.KubeletRoot, "--cgroup-parent", opts.CgroupParent)
	cmd.Env = append(os.Environ(), "PATH="+e.Tools+":"+os.Getenv("PATH"))
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 3) {
		t.Fatalf("hardenctl explain -f: %v\n%s", err, out)
	}
	var verdicts []struct {
		Pod, Container string
		Runs           bool
		Refused        string
		Profile        string
		Runtime        string
		Notes          []string
		Report         *decide.Report
	}
	if err := json.Unmarshal(out, &verdicts); err != nil {
		t.Fatalf("explain -o json: %v\n%s", err, out)
	}

	// What the shim does.
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kube.Decode(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]criOutcome{}
	for _, p := range pods {
		for k, o := range e.runKubePod(t, dir, p) {
			got[p.Namespace+"/"+p.Name+" "+k] = o
		}
	}

	if len(verdicts) != len(got) {
		t.Errorf("explain gave %d verdicts, CRI ran %d sandboxes and containers", len(verdicts), len(got))
	}
	for _, v := range verdicts {
		key := v.Pod + " " + v.Container
		o, ok := got[key]
		if !ok {
			t.Errorf("%s: explained, not run", key)
			continue
		}
		t.Logf("%s: explain runs=%v profile=%s runtime=%s refused=%q; CRI started=%v", key, v.Runs, v.Profile, v.Runtime, v.Refused, o.started)
		if v.Runs != o.started {
			t.Errorf("%s: explain says runs=%v (%s), CRI started=%v (%s)", key, v.Runs, v.Refused, o.started, o.err)
			continue
		}
		if !v.Runs {
			if v.Refused == "its pod sandbox is refused" {
				continue
			}
			// crictl quotes the CRI error once more.
			if want := reason(v.Refused); want == "" || !strings.Contains(strings.ReplaceAll(o.err, `\`, ""), strings.ReplaceAll(want, `\`, "")) {
				t.Errorf("%s: explain refuses with %q, the CRI error is %q", key, want, o.err)
			}
			continue
		}
		if o.report == nil || v.Report == nil {
			t.Errorf("%s: no report (explain %v, kept %v)", key, v.Report != nil, o.report != nil)
			continue
		}
		if v.Profile != o.report.Profile || v.Runtime != string(o.report.Runtime) {
			t.Errorf("%s: explain says profile %s on %s, the shim applied %s on %s", key, v.Profile, v.Runtime, o.report.Profile, o.report.Runtime)
		}
		if ex, sh := changedFields(v.Report.Changes), changedFields(o.report.Changes); !slices.Equal(ex, sh) {
			t.Errorf("%s: changed fields differ\nexplain: %+v\nshim:    %+v", key, v.Report.Changes, o.report.Changes)
		}
	}
}

// reason is a refusal's reason without the container's id: from the
// rule on ("mounts: mounts[9].source: host path ...").
func reason(refusal string) string {
	const marker = "refused by hardening policy: "
	if i := strings.Index(refusal, marker); i >= 0 {
		return refusal[i+len(marker):]
	}
	return ""
}

// changedFields are a report's changes as rule:field.
func changedFields(cs []hardening.Change) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Rule+":"+c.Field)
	}
	return out
}

// runKubePod runs a pod's sandbox and containers as the kubelet would ask
// for them (the CRI configs of package kube, as JSON for crictl), then
// stops and removes them and reads the kept reports. Keys: "(sandbox)"
// and the container names.
func (e *Env) runKubePod(t *testing.T, dir string, p kube.Pod) map[string]criOutcome {
	t.Helper()
	out := map[string]criOutcome{}
	base := filepath.Join(dir, p.Name)
	if err := os.MkdirAll(p.Sandbox.GetLogDirectory(), 0o755); err != nil {
		t.Fatal(err)
	}
	podJSON := base + "-pod.json"
	if err := writeJSON(podJSON, p.Sandbox); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := e.Crictl(ctx(t, 2*time.Minute), "runp", "--runtime", p.Handler, podJSON)
	if err != nil {
		out["(sandbox)"] = criOutcome{err: err.Error()}
		for _, c := range p.Containers {
			out[c.Name] = criOutcome{err: "its pod sandbox is refused"}
		}
		return out
	}
	sb := strings.TrimSpace(stdout)
	var ids []string
	names := map[string]string{}
	for _, c := range p.Containers {
		if err := os.MkdirAll(filepath.Join(p.Sandbox.GetLogDirectory(), c.Name), 0o755); err != nil {
			t.Fatal(err)
		}
		ctrJSON := base + "-" + c.Name + ".json"
		if err := writeJSON(ctrJSON, c.Config); err != nil {
			t.Fatal(err)
		}
		stdout, _, err := e.Crictl(ctx(t, 2*time.Minute), "create", sb, ctrJSON, podJSON)
		if err != nil {
			out[c.Name] = criOutcome{err: err.Error()}
			continue
		}
		id := strings.TrimSpace(stdout)
		ids = append(ids, id)
		names[id] = c.Name
		if _, _, err := e.Crictl(ctx(t, 2*time.Minute), "start", id); err != nil {
			out[c.Name] = criOutcome{err: err.Error()}
			continue
		}
		out[c.Name] = criOutcome{started: true}
	}
	for _, id := range ids {
		if _, _, err := e.Crictl(ctx(t, time.Minute), "stop", id); err != nil {
			t.Errorf("crictl stop %s: %v", names[id], err)
		}
		if _, _, err := e.Crictl(ctx(t, time.Minute), "rm", id); err != nil {
			t.Errorf("crictl rm %s: %v", names[id], err)
		}
	}
	for _, step := range []string{"stopp", "rmp"} {
		if _, _, err := e.Crictl(ctx(t, time.Minute), step, sb); err != nil {
			t.Errorf("crictl %s %s: %v", step, p.Name, err)
		}
	}
	out["(sandbox)"] = criOutcome{started: true}
	names[sb] = "(sandbox)"
	for id, name := range names {
		o := out[name]
		if !o.started {
			continue
		}
		r, err := reports.Read(filepath.Join(e.Dir, "reports"), k8sNamespace, id)
		if err != nil {
			t.Errorf("kept report of %s %s: %v", p.Name, name, err)
			continue
		}
		o.report = r
		out[name] = o
	}
	return out
}
