//go:build integration

package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/integration/harness"
	"github.com/hardened-dev/hardened/internal/reports"
)

// pod is a pod sandbox run with crictl.
type pod struct {
	e       *Env
	ID      string
	Name    string
	Config  string // pod config file (crictl create needs it)
	Handler string
}

type podOpts struct {
	Handler     string
	Labels      map[string]string
	Annotations map[string]string
	// SecurityContext is the pod's linux.security_context (CRI JSON).
	SecurityContext map[string]any
	// Sysctls are the pod's linux.sysctls.
	Sysctls map[string]string
	// CgroupParent replaces the Env's cgroup parent (a pod cgroup of its
	// own, as the kubelet gives every pod).
	CgroupParent string
}

func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// runPod runs a pod sandbox; it is stopped and removed when the test ends.
// The error is crictl's (the CRI error) when the sandbox does not run.
func (e *Env) runPod(t *testing.T, name string, o podOpts) (*pod, error) {
	t.Helper()
	name = strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(name, "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	name += "-" + randHex(3)
	dir := filepath.Join(e.Dir, "pods", name)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "hd-cri", "uid": "uid-" + name, "attempt": 0},
		"hostname":      name,
		"log_directory": filepath.Join(dir, "logs"),
		"labels":        o.Labels,
		"annotations":   o.Annotations,
		"linux":         map[string]any{"cgroup_parent": cmpOr(o.CgroupParent, e.CgroupParent), "security_context": o.SecurityContext, "sysctls": o.Sysctls},
	}
	p := &pod{e: e, Name: name, Config: filepath.Join(dir, "pod.json"), Handler: o.Handler}
	if err := writeJSON(p.Config, cfg); err != nil {
		t.Fatal(err)
	}
	args := []string{"runp"}
	if o.Handler != "" {
		args = append(args, "--runtime", o.Handler)
	}
	out, _, err := e.Crictl(ctx(t, 2*time.Minute), append(args, p.Config)...)
	if err != nil {
		return nil, err
	}
	p.ID = strings.TrimSpace(out)
	t.Cleanup(func() {
		// A healthy pod stops in a second or two; 45s bounds a hang.
		c, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		if _, _, err := e.Crictl(c, "stopp", p.ID); err != nil {
			t.Errorf("stop pod %s: %v", p.Name, err)
			return
		}
		c2, cancel2 := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel2()
		if _, _, err := e.Crictl(c2, "rmp", p.ID); err != nil {
			t.Errorf("remove pod %s: %v", p.Name, err)
		}
	})
	t.Logf("pod %s (%s) on handler %q", p.Name, p.ID[:12], o.Handler)
	return p, nil
}

func (e *Env) mustRunPod(t *testing.T, name string, o podOpts) *pod {
	t.Helper()
	p, err := e.runPod(t, name, o)
	if err != nil {
		t.Fatalf("run pod: %v\n--- containerd log ---\n%s", err, e.LogTail(30))
	}
	return p
}

type ctrOpts struct {
	Image       string
	Command     []string
	Annotations map[string]string
	// Linux is the container config's "linux" object (CRI JSON).
	Linux map[string]any
	// Mounts are the container config's mounts (CRI JSON: container_path,
	// host_path, readonly, ...), the kubelet's hostPath volumes.
	Mounts []map[string]any
}

// start creates and starts a container in the pod; the error is the CRI
// error of whichever step failed.
func (p *pod) start(t *testing.T, name string, o ctrOpts) (string, error) {
	t.Helper()
	if o.Image == "" {
		o.Image = imageBusybox
	}
	if o.Linux == nil {
		o.Linux = map[string]any{}
	}
	cfg := map[string]any{
		"metadata":    map[string]any{"name": name, "attempt": 0},
		"image":       map[string]any{"image": o.Image},
		"command":     o.Command,
		"log_path":    name + ".log",
		"annotations": o.Annotations,
		"linux":       o.Linux,
		"mounts":      o.Mounts,
	}
	path := filepath.Join(filepath.Dir(p.Config), "ctr-"+name+".json")
	if err := writeJSON(path, cfg); err != nil {
		t.Fatal(err)
	}
	out, _, err := p.e.Crictl(ctx(t, 2*time.Minute), "create", p.ID, path, p.Config)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if _, _, err := p.e.Crictl(ctx(t, 2*time.Minute), "start", id); err != nil {
		return id, err
	}
	return id, nil
}

func (p *pod) mustStart(t *testing.T, name string, o ctrOpts) string {
	t.Helper()
	id, err := p.start(t, name, o)
	if err != nil {
		t.Fatalf("container %s: %v\n--- containerd log ---\n%s", name, err, p.e.LogTail(30))
	}
	return id
}

// exec runs a command in a container through CRI's streaming exec (the
// kubectl exec path); execSync through ExecSync.
func (e *Env) exec(t *testing.T, id string, cmd ...string) (string, error) {
	t.Helper()
	out, _, err := e.Crictl(ctx(t, time.Minute), append([]string{"exec", id}, cmd...)...)
	return out, err
}

func (e *Env) execSync(t *testing.T, id string, cmd ...string) (string, error) {
	t.Helper()
	out, _, err := e.Crictl(ctx(t, time.Minute), append([]string{"exec", "-s", id}, cmd...)...)
	return out, err
}

func (e *Env) mustExec(t *testing.T, id string, cmd ...string) string {
	t.Helper()
	out, err := e.exec(t, id, cmd...)
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	return out
}

// statusField returns a field of /proc/<pid>/status text.
func statusField(status, field string) string {
	m := regexp.MustCompile(`(?m)^` + field + `:\s*(\S+)`).FindStringSubmatch(status)
	if m == nil {
		return ""
	}
	return m[1]
}

var sleepCmd = []string{"sleep", "3600"}

func hostKernel(t *testing.T) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}

// inGVisor reports whether the container runs in a gVisor sandbox: the
// Sentry reports its own kernel release, not the host's.
func (e *Env) inGVisor(t *testing.T, id string) bool {
	t.Helper()
	rel := strings.TrimSpace(e.mustExec(t, id, "uname", "-r"))
	t.Logf("container %s: uname -r = %s (host %s)", id[:12], rel, hostKernel(t))
	return rel != hostKernel(t)
}

// TestCRIStockRunc is the control: the harness itself (CNI, streaming
// exec, images) with containerd's own runc shim. What it prints is what a
// pod gets without hardening.
func TestCRIStockRunc(t *testing.T) {
	e := env(t)
	p := e.mustRunPod(t, t.Name(), podOpts{Handler: handlerRunc})
	id := p.mustStart(t, "sleeper", ctrOpts{Command: sleepCmd})
	st := e.mustExec(t, id, "cat", "/proc/self/status")
	t.Logf("stock runc: CapEff %s NoNewPrivs %s Seccomp %s",
		statusField(st, "CapEff"), statusField(st, "NoNewPrivs"), statusField(st, "Seccomp"))
	if statusField(st, "CapEff") == "0000000000000000" || statusField(st, "NoNewPrivs") != "0" {
		t.Errorf("the stock runtime should not restrict: %s", st)
	}
	if out, err := e.execSync(t, id, "touch", "/written"); err != nil {
		t.Errorf("the stock runtime gives a writable rootfs: %v %s", err, out)
	}
	if e.inGVisor(t, id) {
		t.Error("runc pod reports a foreign kernel")
	}
	twoContainersTalk(t, e, p)
}

// twoContainersTalk: a web server in one container of the pod, a client in
// another, over the pod's loopback.
func twoContainersTalk(t *testing.T, e *Env, p *pod) (server, client string) {
	t.Helper()
	server = p.mustStart(t, "server", ctrOpts{Command: []string{"sh", "-c",
		"mkdir -p /tmp/www && echo hello-from-$(hostname) > /tmp/www/index.html && exec httpd -f -v -p 127.0.0.1:8080 -h /tmp/www"}})
	client = p.mustStart(t, "client", ctrOpts{Command: sleepCmd})
	var out string
	var err error
	for i := 0; i < 50; i++ {
		out, err = e.exec(t, client, "wget", "-q", "-O-", "http://127.0.0.1:8080/")
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || !strings.Contains(out, "hello-from-") {
		t.Fatalf("client could not reach the server over localhost: %v %q", err, out)
	}
	t.Logf("client got %q from the server over 127.0.0.1", strings.TrimSpace(out))
	return server, client
}

// assertPinnedAndReleased checks that the shim pinned a running container's
// host paths (CRI binds /etc/hosts, /etc/resolv.conf, /dev/shm, ...: the
// report lists them with their staging paths) and, now that it runs,
// released them: the staging directory is gone and containerd's mount
// namespace (whose /run is the temp tree's run/) has no staging mount. On
// gVisor this is the release at Start: runsc's gofer opens an app
// container's sources in `runsc start`.
func (e *Env) assertPinnedAndReleased(t *testing.T, id string) {
	t.Helper()
	rep := e.report(t, id)
	stagingRoot := "/run/containerd-hardened/staging/" + k8sNamespace + "/" + id + "/"
	if len(rep.Pinned) == 0 {
		t.Errorf("container %s: the report lists no pinned host path", id[:12])
	}
	for _, p := range rep.Pinned {
		if !strings.HasPrefix(p.Staged, stagingRoot) {
			t.Errorf("container %s: %s %q staged at %q, want under %s", id[:12], p.Field, p.Source, p.Staged, stagingRoot)
		}
	}
	if _, err := os.Stat(filepath.Join(e.Dir, stagingRoot)); !os.IsNotExist(err) {
		t.Errorf("container %s: its staging directory is left (%v)", id[:12], err)
	}
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", e.PID()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], "/run/containerd-hardened/staging/") {
			t.Errorf("staging mount left in containerd's mount namespace: %s", f[4])
		}
	}
}

// TestCRIRestrictedPod: a pod on the hardened RuntimeClass with no
// annotation gets the node policy's default profile, "hardened", in its
// init process and in what is exec'd into it.
func TestCRIRestrictedPod(t *testing.T) {
	e := env(t)
	needShim(t, e)
	p := e.mustRunPod(t, t.Name(), podOpts{Handler: handlerHardened})
	id := p.mustStart(t, "sleeper", ctrOpts{Command: sleepCmd})
	e.assertPinnedAndReleased(t, id)
	// crictl's pod shares one PID namespace (CRI's default): PID 1 is the
	// sandbox's pause (uid 65535), hardened too.
	sleepPid := strings.Fields(e.mustExec(t, id, "pidof", "sleep"))
	if len(sleepPid) != 1 {
		t.Fatalf("pidof sleep: %q", sleepPid)
	}
	// hardened: CAP_NET_BIND_SERVICE (bit 10) at most.
	for _, tc := range []struct{ who, name, capEff string }{
		{"self", "cat", "0000000000000400"},        // exec'd: hardened like the init process
		{sleepPid[0], "sleep", "0000000000000400"}, // the container's init
		{"1", "pause", "0000000000000000"},         // the sandbox (non-root: no effective caps)
	} {
		st := e.mustExec(t, id, "cat", "/proc/"+tc.who+"/status")
		want := map[string]string{
			"Name":       tc.name,
			"CapEff":     tc.capEff,
			"CapBnd":     "0000000000000400",
			"CapAmb":     "0000000000000000",
			"NoNewPrivs": "1",
			"Seccomp":    "2",
		}
		for f, v := range want {
			if got := statusField(st, f); got != v {
				t.Errorf("/proc/%s/status %s = %q, want %q", tc.who, f, got, v)
			}
		}
		t.Logf("/proc/%s/status: Name %s Uid %s CapPrm %s CapEff %s CapBnd %s NoNewPrivs %s Seccomp %s", tc.who,
			statusField(st, "Name"), statusField(st, "Uid"), statusField(st, "CapPrm"),
			statusField(st, "CapEff"), statusField(st, "CapBnd"), statusField(st, "NoNewPrivs"), statusField(st, "Seccomp"))
	}
	if out, err := e.execSync(t, id, "touch", "/written"); err == nil || !strings.Contains(out+err.Error(), "Read-only file system") {
		t.Errorf("rootfs is writable: %v %q", err, out)
	}
	for _, scratch := range []string{"/tmp", "/run"} {
		if out, err := e.execSync(t, id, "touch", scratch+"/written"); err != nil {
			t.Errorf("%s is not writable scratch space: %v %q", scratch, err, out)
		}
	}
	// cgroup v1's pids hierarchy, or the container's own cgroup v2 (its
	// cgroup namespace's root; make test-vm).
	pidsMax := "/sys/fs/cgroup/pids/pids.max"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		pidsMax = "/sys/fs/cgroup/pids.max"
	}
	if out := e.mustExec(t, id, "cat", pidsMax); strings.TrimSpace(out) != "1024" {
		t.Errorf("pids.max = %q, want 1024", strings.TrimSpace(out))
	}
	if e.inGVisor(t, id) {
		t.Error("a pod without the untrusted label runs in gVisor; want runc")
	}
	// The runtime has no options table: the shim read the node policy file
	// (HARDENED_POLICY), not its built-in default.
	if r := e.report(t, id); r.Policy != e.nodePolicy() {
		t.Errorf("hardening report: policy %q, want %s", r.Policy, e.nodePolicy())
	}
}

// TestCRIGVisorPod: the hardened-gvisor RuntimeClass puts both containers
// of a pod in one gVisor sandbox; they reach each other over localhost.
func TestCRIGVisorPod(t *testing.T) {
	e := env(t)
	needShim(t, e)
	p := e.mustRunPod(t, t.Name(), podOpts{Handler: handlerGVisor})
	server, client := twoContainersTalk(t, e, p)
	for _, id := range []string{server, client} {
		e.assertPinnedAndReleased(t, id)
		if !e.inGVisor(t, id) {
			t.Errorf("container %s does not run in gVisor", id[:12])
		}
	}
	// runsc's view: both containers in the pod's sandbox.
	out, err := e.runscList(t)
	if err != nil {
		t.Fatal(err)
	}
	sandbox := map[string]string{}
	pids := map[int]bool{}
	for _, c := range out {
		sandbox[c.ID] = c.sandbox()
		if c.sandbox() == p.ID {
			pids[c.Pid] = true
			t.Logf("runsc: container %s status %s pid %d sandbox %s", c.ID[:12], c.Status, c.Pid, c.sandbox()[:12])
		}
	}
	// One gVisor sandbox process (Sentry) for the pause container and both
	// app containers.
	if len(pids) != 1 {
		t.Errorf("the pod's containers run in %d gVisor sandbox processes, want 1: %v", len(pids), pids)
	}
	if sandbox[server] == "" || sandbox[server] != sandbox[client] || sandbox[client] != p.ID {
		t.Errorf("runsc sandboxes: server %q client %q, want both %q", sandbox[server], sandbox[client], p.ID)
	}
	st := e.mustExec(t, client, "cat", "/proc/self/status")
	if got := statusField(st, "CapEff"); got != "0000000000000400" {
		t.Errorf("gVisor container CapEff = %s, want 0000000000000400 (hardened)", got)
	}
}

type runscState struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Annotations map[string]string `json:"annotations"`
}

func (s runscState) sandbox() string {
	if id := s.Annotations["io.kubernetes.cri.sandbox-id"]; id != "" {
		return id
	}
	return s.ID
}

// runscList lists the gVisor containers of every runsc root under the
// private /run.
func (e *Env) runscList(t *testing.T) ([]runscState, error) {
	t.Helper()
	var roots []string
	_ = filepath.WalkDir(filepath.Join(e.Dir, "run"), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && filepath.Base(path) == k8sNamespace && strings.Contains(path, "runsc") {
			roots = append(roots, "/run"+strings.TrimPrefix(path, filepath.Join(e.Dir, "run")))
		}
		return nil
	})
	if len(roots) == 0 {
		return nil, fmt.Errorf("no runsc root under %s/run", e.Dir)
	}
	var all []runscState
	for _, root := range roots {
		cmd := e.inNS(ctx(t, time.Minute), filepath.Join(e.Tools, "runsc"), "--root", root, "list", "--format", "json")
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("runsc --root %s list: %w", root, err)
		}
		var list []runscState
		if err := json.Unmarshal(out, &list); err != nil {
			return nil, fmt.Errorf("runsc list: %w: %s", err, out)
		}
		t.Logf("runsc --root %s list: %d containers", root, len(list))
		all = append(all, list...)
	}
	return all, nil
}

// TestCRILabelRoutesToGVisor: on the hardened RuntimeClass, the node
// policy's route sends pods labelled hardened.dev/untrusted=true to gVisor
// (pod labels never reach the OCI spec: the shim reads them from the
// sandbox's containerd record). Pods without it stay on runc; a pod can
// also ask for gVisor with the annotation hardened.dev/runtime.
func TestCRILabelRoutesToGVisor(t *testing.T) {
	e := env(t)
	needShim(t, e)
	for _, tc := range []struct {
		name   string
		o      podOpts
		gvisor bool
	}{
		{"labelled", podOpts{Labels: map[string]string{"hardened.dev/untrusted": "true"}}, true},
		{"unlabelled", podOpts{Labels: map[string]string{"hardened.dev/untrusted": "false"}}, false},
		{"annotated", podOpts{Annotations: map[string]string{"hardened.dev/runtime": "gvisor"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Handler = handlerHardened
			p := e.mustRunPod(t, t.Name(), tc.o)
			id := p.mustStart(t, "sleeper", ctrOpts{Command: sleepCmd})
			if got := e.inGVisor(t, id); got != tc.gvisor {
				t.Errorf("in gVisor = %v, want %v", got, tc.gvisor)
			}
		})
	}
}

// TestCRIProfileBelowMinimumRefused: a pod asking (annotation
// hardened.dev/profile) for a profile below the node policy's minimum is
// refused, and the CRI error says why.
func TestCRIProfileBelowMinimumRefused(t *testing.T) {
	e := env(t)
	needShim(t, e)
	// Control: the same runtime runs a pod that asks for nothing.
	ok := e.mustRunPod(t, t.Name()+"-control", podOpts{Handler: handlerMin})
	ok.mustStart(t, "sleeper", ctrOpts{Command: sleepCmd})

	ann := map[string]string{"hardened.dev/profile": "baseline"}
	p, err := e.runPod(t, t.Name(), podOpts{Handler: handlerMin, Annotations: ann})
	if err == nil {
		// Refusing at the container instead of the sandbox is acceptable.
		_, err = p.start(t, "sleeper", ctrOpts{Command: sleepCmd, Annotations: ann})
	}
	if err == nil {
		t.Fatal("a pod asking for profile baseline below minimum hardened was started")
	}
	t.Logf("CRI error: %v", err)
	msg := err.Error()
	for _, want := range []string{"baseline", "hardened"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the CRI error does not name %q", want)
		}
	}
	if !strings.Contains(msg, "refused") && !strings.Contains(msg, "minimum") {
		t.Error("the CRI error does not say the profile was refused for being below the minimum")
	}
}

// TestCRILocalhostSeccompKept: hardening never loosens. A pod's own
// (Localhost) seccomp profile that denies chmod keeps denying it under the
// hardened runtime, which adds its own filter on top. (critest's Localhost
// spec checks the same with `chmod 400 /`: seccomp answers before the
// read-only rootfs would, so it passes under hardened too.)
func TestCRILocalhostSeccompKept(t *testing.T) {
	e := env(t)
	profile := filepath.Join(e.Dir, "seccomp-block-chmod.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["chmod", "fchmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	linux := map[string]any{"security_context": map[string]any{
		"seccomp": map[string]any{"profile_type": 2, "localhost_ref": profile}, // Localhost
	}}
	for _, handler := range []string{handlerRunc, handlerHardened} {
		t.Run(handler, func(t *testing.T) {
			if handler != handlerRunc {
				needShim(t, e)
			}
			p := e.mustRunPod(t, t.Name(), podOpts{Handler: handler})
			id := p.mustStart(t, "sleeper", ctrOpts{Command: sleepCmd, Linux: linux})
			out, err := e.execSync(t, id, "sh", "-c", "touch /tmp/f && chmod 600 /tmp/f")
			if err == nil || !strings.Contains(out+err.Error(), "Operation not permitted") {
				t.Errorf("chmod on writable /tmp: want EPERM from the pod's filter, got %v %q", err, out)
			}
			st := e.mustExec(t, id, "cat", "/proc/self/status")
			t.Logf("Seccomp %s Seccomp_filters %s", statusField(st, "Seccomp"), statusField(st, "Seccomp_filters"))
		})
	}
}

// TestCRIDropInInstalled: what install.sh installed (deploy/base/node/) is what
// containerd's CRI plugin runs with: both hardened runtimes, with the
// shim's runtime type and path, the annotation allowlists; `hardened` with
// no options table (its shims get HARDENED_POLICY from the shim
// environment install.sh adds for the moved ETC_DIR), `hardened-gvisor`
// with its policy's ConfigPath; the drop-in merged into the main config
// without replacing it (the main config's CNI and runc settings are still
// there).
func TestCRIDropInInstalled(t *testing.T) {
	e := env(t)
	needShim(t, e)
	out, _, err := e.Crictl(ctx(t, time.Minute), "info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Config struct {
			Containerd struct {
				Runtimes map[string]struct {
					Type                 string         `json:"runtimeType"`
					Path                 string         `json:"runtimePath"`
					PodAnnotations       []string       `json:"PodAnnotations"`
					ContainerAnnotations []string       `json:"ContainerAnnotations"`
					Options              map[string]any `json:"options"`
				} `json:"runtimes"`
			} `json:"containerd"`
			CNI struct {
				ConfDir string `json:"confDir"`
			} `json:"cni"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("crictl info: %v\n%s", err, out)
	}
	rts := info.Config.Containerd.Runtimes
	// "": no options table (CRI sends none, the shim reads the node policy).
	for name, policy := range map[string]string{handlerHardened: "", handlerGVisor: "policy-gvisor.toml"} {
		r, ok := rts[name]
		if !ok {
			t.Errorf("CRI has no runtime %q (have %v)", name, slices.Collect(maps.Keys(rts)))
			continue
		}
		optionsOK := len(r.Options) == 0
		if policy != "" {
			optionsOK = r.Options["ConfigPath"] == filepath.Join(e.Dir, "etc/hardened", policy)
		}
		if r.Type != "io.containerd.hardened.v2" || r.Path != filepath.Join(e.Dir, "opt/hardened/bin", harness.ShimBinary) ||
			!slices.Contains(r.PodAnnotations, "hardened.dev/*") || !slices.Contains(r.ContainerAnnotations, "hardened.dev/*") ||
			!optionsOK {
			t.Errorf("runtime %s: %+v", name, r)
		}
		t.Logf("CRI runtime %s: type %s path %s options %v", name, r.Type, r.Path, r.Options)
	}
	if _, ok := rts[handlerRunc]; !ok {
		t.Error("the main config's runc runtime is gone")
	}
	if info.Config.CNI.ConfDir != filepath.Join(e.Dir, "net.d") {
		t.Errorf("the main config's CNI conf_dir is gone: %q", info.Config.CNI.ConfDir)
	}
	// The shim environment (not in CRI's info: containerd's merged config).
	dump, err := run(ctx(t, time.Minute), e.Dir, nil, filepath.Join(e.Tools, "containerd"), "--config", e.Config, "config", "dump")
	if err != nil {
		t.Fatal(err)
	}
	want := "HARDENED_POLICY=" + e.nodePolicy()
	if !strings.Contains(dump, want) {
		t.Errorf("containerd's merged config does not give the shims %s:\n%s", want, dump)
	}
}

// TestCRISeccompDenialsReported: a pod routed to seccomp_notify = "report"
// (by a label the node policy's route matches) runs as before: processes
// exec'd into it through CRI (the kubectl exec path) get EPERM for a
// syscall the filter denies; and once the container is removed, its kept
// report names the syscall with its count.
func TestCRISeccompDenialsReported(t *testing.T) {
	e := env(t)
	needShim(t, e)
	p := e.mustRunPod(t, t.Name(), podOpts{Handler: handlerHardened, Labels: map[string]string{labelSeccompReport: "true"}})
	id := p.mustStart(t, "sleeper", ctrOpts{Command: sleepCmd})
	for range 2 {
		out, err := e.execSync(t, id, "unshare", "-U", "true")
		if err == nil || !strings.Contains(out+err.Error(), "Operation not permitted") {
			t.Fatalf("unshare: want EPERM as without the listener, got %v %q", err, out)
		}
	}
	for _, step := range []string{"stop", "rm"} {
		if _, _, err := e.Crictl(ctx(t, time.Minute), step, id); err != nil {
			t.Fatalf("crictl %s: %v", step, err)
		}
	}
	r, err := reports.Read(filepath.Join(e.Dir, "reports"), "k8s.io", id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Seccomp == nil || r.Seccomp.Mode != "report" || len(r.Seccomp.Denials) != 1 {
		t.Fatalf("kept report's seccomp section: %+v", r.Seccomp)
	}
	if d := r.Seccomp.Denials[0]; d.Syscall != "unshare" || d.Count != 2 || d.Answer != "EPERM" {
		t.Errorf("denial %+v, want unshare twice, answered EPERM", d)
	}
}
