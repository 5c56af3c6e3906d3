package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/distribution/reference"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/internal/crispec"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/hostfacts"
	"github.com/hardened-dev/hardened/internal/kube"
	"github.com/hardened-dev/hardened/profiles"
)

// sandboxPid stands for a pod sandbox's pause process in the namespace
// paths of its app containers (/proc/<pid>/ns/net): one above the
// kernel's largest pid, so it is never a process of this host.
const sandboxPid = 4194305

// podOptions are what explain -f adds to explain's command line.
type podOptions struct {
	file, address             string
	criRoot, criState         string
	kubeletRoot, cgroupParent string
	pauseImage                string
	handlers                  []string
}

// podVerdict is one container's (or a pod sandbox's) outcome.
type podVerdict struct {
	Pod       string         `json:"pod"`
	Source    string         `json:"source"`
	Container string         `json:"container"` // "(sandbox)" for the pod sandbox
	Init      bool           `json:"init,omitempty"`
	Handler   string         `json:"handler"`
	Runs      bool           `json:"runs"`
	Hardened  bool           `json:"hardened"` // false: the handler is not the shim's
	Refused   string         `json:"refused,omitempty"`
	Profile   string         `json:"profile,omitempty"`
	Runtime   string         `json:"runtime,omitempty"`
	Changes   int            `json:"changes"`
	Notes     []string       `json:"notes,omitempty"`
	Report    *decide.Report `json:"report,omitempty"`
	// Containerd is the spec containerd's CRI would write; Config what
	// the shim would hand the runtime (config.json).
	Containerd *specs.Spec `json:"containerd,omitempty"`
	Config     *specs.Spec `json:"config,omitempty"`
}

// runExplainPods reads Kubernetes manifests, builds each pod's sandbox and
// container specs as the kubelet and containerd's CRI would (packages kube
// and crispec) and decides each as the shim would. It prints a line per
// container (or, with -o json|yaml, the verdicts with their reports and
// configs) and returns errRefused if any would not start.
func runExplainPods(o *explainOptions, po *podOptions, stdin io.Reader, stdout, stderr io.Writer) error {
	var data []byte
	var err error
	if po.file == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(po.file)
	}
	if err != nil {
		return fmt.Errorf("failed to read manifests: %w", err)
	}
	pods, err := kube.Decode(data, kube.Options{KubeletRoot: po.kubeletRoot, CgroupParent: po.cgroupParent})
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errInvalid, po.file, err)
	}
	pol, set, err := loadPolicy(o.policyFile)
	if err != nil {
		return err
	}
	pf := decide.Policy{Policy: pol, Profiles: set, Source: policySource(o.policyFile)}
	var host decide.Host
	var notes []string
	if o.offline {
		host, notes = offlineHost(pol, o.runDir, o.appArmor)
	} else {
		host = hostFacts(pol, &specs.Spec{}, o.runDir, o.appArmor)
	}
	images := newImageStore(po.address, o.offline)
	defer images.close()
	notes = append(notes, images.note)
	node := crispec.DefaultNode()
	node.RootDir, node.StateDir = po.criRoot, po.criState
	node.AppArmor = o.appArmor
	var st unix.Statfs_t
	node.CgroupV2 = unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	hostname, _ := os.Hostname()

	var out []podVerdict
	refused := false
	for _, p := range pods {
		vs := explainPod(p, po, node, host, pf, o, images, hostname)
		for _, v := range vs {
			refused = refused || !v.Runs
		}
		out = append(out, vs...)
	}
	for _, n := range notes {
		if n != "" {
			fmt.Fprintf(stderr, "note: %s\n", n)
		}
	}
	if err := emit(stdout, o.output, out, func() error { return writeVerdicts(stdout, out) }); err != nil {
		return err
	}
	if refused {
		return fmt.Errorf("%w: a container of %s would not start", errRefused, po.file)
	}
	return nil
}

// explainPod decides a pod's sandbox, then its containers in the sandbox's
// runtime.
func explainPod(p kube.Pod, po *podOptions, node crispec.Node, host decide.Host, pf decide.Policy, o *explainOptions, images *imageStore, hostname string) []podVerdict {
	base := podVerdict{Pod: p.Namespace + "/" + p.Name, Source: p.Source, Handler: p.Handler}
	if !slices.Contains(po.handlers, p.Handler) {
		base.Container, base.Runs = "(pod)", true
		base.Notes = []string{fmt.Sprintf("runtime handler %q is not one of --handler %s: the pod runs on another runtime, not hardened's", p.Handler, strings.Join(po.handlers, ","))}
		return []podVerdict{base}
	}
	base.Hardened = true
	sbID := fakeID("sandbox", p.Namespace, p.Name, p.UID)
	sb := crispec.Sandbox{ID: sbID, Pid: sandboxPid, NetNS: "/var/run/netns/cni-" + sbID[:8], Config: p.Sandbox, Hostname: hostname}
	pause := images.image(po.pauseImage)
	if !pause.Known {
		// containerd's default pause image's config.
		def := crispec.PauseImage()
		def.Name = pause.Name
		pause = def
	}
	sbLabels := criLabels(p.Sandbox.GetLabels(), pause.Config.Labels, decide.ContainerTypeSandbox)
	v := base
	v.Container = "(sandbox)"
	spec, err := crispec.SandboxSpec(node, sb, pause)
	if err != nil {
		v.Refused = "containerd's CRI would not create the sandbox: " + err.Error()
		return withoutSandbox([]podVerdict{v}, p, base)
	}
	plan := decidePod(&v, decide.Facts{
		ID: sbID, Namespace: "k8s.io", Spec: spec, Policy: pf, Host: host,
		Containerd: decide.Containerd{Asked: true, Labels: sbLabels, ImageLabels: pause.Config.Labels, NamespaceLabels: o.namespaceLabels,
			CRI: decide.CRIRecord{Kind: decide.ContainerTypeSandbox}},
	}, o.offline)
	out := []podVerdict{v}
	if plan == nil {
		return withoutSandbox(out, p, base)
	}
	sandbox := decide.Sandbox{Runtime: profiles.Runtime(plan.Report.Runtime), CgroupsPath: spec.Linux.CgroupsPath}
	for _, c := range p.Containers {
		v := base
		v.Container, v.Init = c.Name, c.Init
		img := images.image(c.Image)
		id := fakeID("container", p.Namespace, p.Name, p.UID, c.Name)
		spec, notes, err := crispec.ContainerSpec(node, sb, id, c.Config, img)
		v.Notes = notes
		if err != nil {
			v.Refused = "containerd's CRI would not create the container: " + err.Error()
			out = append(out, v)
			continue
		}
		labels := maps.Clone(sbLabels)
		maps.Copy(labels, criLabels(c.Config.GetLabels(), img.Config.Labels, decide.ContainerTypeContainer))
		decidePod(&v, decide.Facts{
			ID: id, Namespace: "k8s.io", Spec: spec, Policy: pf, Host: host, Sandbox: sandbox,
			Containerd: decide.Containerd{Asked: true, Labels: labels, ImageLabels: img.Config.Labels, NamespaceLabels: o.namespaceLabels,
				CRI: decide.CRIRecord{Kind: decide.ContainerTypeContainer, SandboxID: sbID}},
		}, o.offline)
		out = append(out, v)
	}
	return out
}

// withoutSandbox adds the pod's containers, never created when its
// sandbox is not.
func withoutSandbox(out []podVerdict, p kube.Pod, base podVerdict) []podVerdict {
	for _, c := range p.Containers {
		v := base
		v.Container, v.Init = c.Name, c.Init
		v.Refused = "its pod sandbox is refused"
		out = append(out, v)
	}
	return out
}

// decidePod decides one spec into v and returns the plan, or nil if the
// spec is refused. Host paths that exist here are opened as the shim opens
// them; those that do not (the kubelet's and containerd's pod directories
// on a machine that is not the node) are judged as written.
func decidePod(v *podVerdict, f decide.Facts, offline bool) *decide.Plan {
	v.Containerd = f.Spec
	plan, err := decide.Decide(f)
	if err == nil && plan.Pins != nil {
		var opened hostfacts.Sources
		var openErr error
		resolved := map[string]string{}
		var existing []decide.PinItem
		for _, it := range plan.Pins.Items {
			if _, statErr := os.Lstat(it.Source); offline || errors.Is(statErr, os.ErrNotExist) {
				resolved[it.Source] = it.Source
			} else {
				existing = append(existing, it)
			}
		}
		if len(resolved) > 0 {
			v.Notes = append(v.Notes, fmt.Sprintf("%d host paths not present here judged as written (containerd creates missing ones on the node)", len(resolved)))
		}
		opened, openErr = hostfacts.Open(existing)
		maps.Copy(resolved, opened.Resolved())
		err = plan.JudgeSources(resolved, openErr)
		opened.Close()
	}
	if err != nil {
		v.Refused = err.Error()
		return nil
	}
	rep := plan.Report
	v.Runs = true
	if rep.Refused != "" {
		v.Notes = append(v.Notes, "audit mode: enforce would refuse it: "+rep.Refused)
	}
	v.Profile, v.Runtime, v.Changes = rep.Profile, string(rep.Runtime), len(rep.Changes)
	v.Report, v.Config = rep, plan.Spec
	return plan
}

// criLabels are the labels containerd's CRI gives a container record: the
// image config's, the CRI config's over them, and the kind.
func criLabels(config, image map[string]string, kind string) map[string]string {
	out := maps.Clone(image)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, config)
	out["io.cri-containerd.kind"] = kind
	return out
}

// fakeID is a stable 64-hex id for a pod's sandbox or container.
func fakeID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}

// writeVerdicts prints one line per container and its reason or notes.
func writeVerdicts(w io.Writer, vs []podVerdict) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tCONTAINER\tHANDLER\tRUNS\tPROFILE\tRUNTIME\tCHANGES")
	for _, v := range vs {
		name := v.Container
		if v.Init {
			name += " (init)"
		}
		runs := "yes"
		if !v.Runs {
			runs = "REFUSED"
		}
		prof, rt, changes := v.Profile, v.Runtime, fmt.Sprint(v.Changes)
		if !v.Hardened {
			prof, rt, changes = "-", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Pod, name, orDash(v.Handler), runs, orDash(prof), orDash(rt), changes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range vs {
		if v.Refused != "" {
			fmt.Fprintf(w, "%s %s: refused: %s\n", v.Pod, v.Container, v.Refused)
		}
		for _, n := range v.Notes {
			fmt.Fprintf(w, "%s %s: note: %s\n", v.Pod, v.Container, n)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// imageStore reads image configs from containerd's store (the CRI's
// namespace, k8s.io), when there is a containerd to ask.
type imageStore struct {
	client *containerd.Client
	note   string
	cache  map[string]crispec.Image
}

func newImageStore(address string, offline bool) *imageStore {
	s := &imageStore{cache: map[string]crispec.Image{}}
	if offline {
		s.note = "offline: image configs not read from containerd"
		return s
	}
	if _, err := os.Stat(address); err != nil {
		s.note = fmt.Sprintf("no containerd at %s (--address): image configs (user, entrypoint, labels) unknown", address)
		return s
	}
	c, err := containerd.New(address, containerd.WithTimeout(5*time.Second), containerd.WithDefaultNamespace("k8s.io"))
	if err != nil {
		s.note = fmt.Sprintf("containerd at %s: %v: image configs unknown", address, err)
		return s
	}
	s.client = c
	return s
}

// image is the image's config from the store, or an unknown image.
func (s *imageStore) image(name string) crispec.Image {
	ref := name
	if named, err := reference.ParseDockerRef(name); err == nil {
		ref = named.String()
	}
	if img, ok := s.cache[ref]; ok {
		return img
	}
	img := crispec.Image{Name: ref}
	if s.client != nil {
		ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), "k8s.io"), 10*time.Second)
		defer cancel()
		if i, err := s.client.GetImage(ctx, ref); err == nil {
			if spec, err := i.Spec(ctx); err == nil {
				img.Config, img.Known = spec.Config, true
			}
		}
	}
	s.cache[ref] = img
	return img
}

func (s *imageStore) close() {
	if s.client != nil {
		s.client.Close()
	}
}
