package deploy_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "regenerate manifests/10-configmap.yaml from node/")

const (
	configMapFile = "manifests/10-configmap.yaml"
	configMapName = "hardened-node-config"
	namespace     = "hardened-system"
	// The shim's runtime type and the paths install.sh installs to by
	// default; the drop-in must name exactly these.
	runtimeType = "io.containerd.hardened.v2"
	shimPath    = "/opt/hardened/bin/containerd-shim-hardened-v2"
	// defaultPolicy is the shim's shim.DefaultPolicyPath: what the
	// `hardened` runtime (no options table) reads.
	defaultPolicy = "/etc/hardened/policy.toml"
	annotationKey = "hardened.dev/*"
	enabledLabel  = "hardened.dev/enabled"
)

// nodeFiles are the ConfigMap's keys: the files install.sh expects in
// CONFIG_DIR, kept as plain files in node/.
var nodeFiles = []string{"containerd-hardened.toml", "policy-gvisor.toml", "policy.toml"}

// object is one decoded YAML document.
type object struct {
	file string
	obj  any
}

// newObject returns the typed object for a document's apiVersion and kind.
// A kind missing here fails the test: add it, with its Go type, so that it
// is decoded strictly like the rest.
func newObject(tm metav1.TypeMeta) (any, error) {
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "node.k8s.io/v1 RuntimeClass":
		return &nodev1.RuntimeClass{}, nil
	}
	return nil, fmt.Errorf("no Go type registered for apiVersion %q kind %q", tm.APIVersion, tm.Kind)
}

// splitDocs splits a multi-document YAML file on "---" lines, dropping
// documents that hold only comments.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(data), -1) {
		empty := true
		for _, l := range strings.Split(d, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// decodeStrict decodes one YAML document the way the API server does in
// strict field validation: duplicate keys, unknown fields and fields in the
// wrong case ("hostPid") are errors. (encoding/json, and so
// yaml.UnmarshalStrict, would accept the wrong case silently.)
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// decodeAll strictly decodes every YAML file under deploy/: an unknown or
// misspelt field, a duplicate key or a wrong type is an error.
func decodeAll(t *testing.T) []object {
	t.Helper()
	var objs []object
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range splitDocs(data) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Errorf("%s: document %d: %v", path, i+1, err)
				continue
			}
			obj, err := newObject(tm)
			if err != nil {
				t.Errorf("%s: document %d: %v", path, i+1, err)
				continue
			}
			if err := decodeStrict(doc, obj); err != nil {
				t.Errorf("%s: document %d (%s): %v", path, i+1, tm.Kind, err)
				continue
			}
			objs = append(objs, object{file: path, obj: obj})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("no manifests found")
	}
	return objs
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := decodeAll(t)
	kinds := map[string]int{}
	for _, o := range objs {
		var meta metav1.ObjectMeta
		switch v := o.obj.(type) {
		case *corev1.Namespace:
			meta = v.ObjectMeta
		case *corev1.ConfigMap:
			meta = v.ObjectMeta
		case *appsv1.DaemonSet:
			meta = v.ObjectMeta
		case *nodev1.RuntimeClass:
			meta = v.ObjectMeta
			// The API server requires a DNS label; containerd looks the
			// handler up as a runtime name.
			for _, msg := range validation.IsDNS1123Label(v.Handler) {
				t.Errorf("%s: RuntimeClass %s: handler %q: %s", o.file, v.Name, v.Handler, msg)
			}
		}
		kinds[fmt.Sprintf("%T", o.obj)]++
		for _, msg := range validation.IsDNS1123Subdomain(meta.Name) {
			t.Errorf("%s: name %q: %s", o.file, meta.Name, msg)
		}
		if _, isNS := o.obj.(*corev1.Namespace); !isNS && meta.Namespace != "" && meta.Namespace != namespace {
			t.Errorf("%s: %s is in namespace %q, want %q", o.file, meta.Name, meta.Namespace, namespace)
		}
	}
	t.Logf("decoded %v", kinds)
	// A typo in a kind or apiVersion would make a document vanish from
	// this set instead of failing: count them.
	for typ, want := range map[string]int{"*v1.Namespace": 1, "*v1.ConfigMap": 1, "*v1.DaemonSet": 1, "*v1.RuntimeClass": 2} {
		if kinds[typ] != want {
			t.Errorf("found %d %s, want %d", kinds[typ], typ, want)
		}
	}
}

// TestStrictDecodingCatchesTypos proves the decoder above is strict.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: x\nhandler: x\nschedulng: {}\n",
		"apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: x\nHandler: x\n",
		"apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: x\nhandler: x\nhandler: y\n",
	} {
		if err := decodeStrict([]byte(doc), &nodev1.RuntimeClass{}); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

func find[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestManifestsFitTogether checks what the API server would only find out
// at runtime (or never): references between the objects.
func TestManifestsFitTogether(t *testing.T) {
	objs := decodeAll(t)
	dss := find[*appsv1.DaemonSet](objs)
	cms := find[*corev1.ConfigMap](objs)
	rcs := find[*nodev1.RuntimeClass](objs)
	nss := find[*corev1.Namespace](objs)
	if len(dss) != 1 || len(cms) != 1 || len(nss) != 1 {
		t.Fatalf("want one DaemonSet, ConfigMap and Namespace; have %d, %d, %d", len(dss), len(cms), len(nss))
	}
	ds, cm, ns := dss[0], cms[0], nss[0]
	if ds.Namespace != ns.Name || cm.Namespace != ns.Name {
		t.Errorf("DaemonSet in %q, ConfigMap in %q, Namespace is %q", ds.Namespace, cm.Namespace, ns.Name)
	}

	spec := ds.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsMap(ds.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range sel {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("DaemonSet selector %s=%s does not match its pod template's labels", k, v)
		}
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	var install *corev1.Container
	for i, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("container %s mounts volume %q, which the pod does not declare", c.Name, m.Name)
			}
		}
		if c.Name == "install" {
			install = &slices.Concat(spec.InitContainers, spec.Containers)[i]
		}
	}
	if install == nil {
		t.Fatal("no install container in the DaemonSet")
	}
	env := map[string]string{}
	for _, e := range install.Env {
		env[e.Name] = e.Value
	}
	// install.sh reads the ConfigMap from CONFIG_DIR and writes the host
	// through HOST_ROOT: both must be mounts.
	mounted := func(path string) *corev1.VolumeMount {
		for i, m := range install.VolumeMounts {
			if m.MountPath == path {
				return &install.VolumeMounts[i]
			}
		}
		return nil
	}
	if m := mounted(env["CONFIG_DIR"]); m == nil {
		t.Errorf("CONFIG_DIR=%q is not a mount of the install container", env["CONFIG_DIR"])
	} else if v := volumes[m.Name]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("CONFIG_DIR is volume %q, not ConfigMap %q", m.Name, cm.Name)
	}
	for _, hostDir := range []string{"/opt/hardened", "/etc/hardened", "/etc/containerd"} {
		m := mounted(env["HOST_ROOT"] + hostDir)
		if m == nil {
			t.Errorf("%s%s is not a mount of the install container", env["HOST_ROOT"], hostDir)
			continue
		}
		if v := volumes[m.Name]; v.HostPath == nil || v.HostPath.Path != hostDir {
			t.Errorf("mount %s is not hostPath %s", m.MountPath, hostDir)
		}
		if m.ReadOnly {
			t.Errorf("mount %s is read-only; install.sh writes there", m.MountPath)
		}
	}
	if env["RESTART_CONTAINERD"] == "true" && !spec.HostPID {
		t.Error("RESTART_CONTAINERD=true needs hostPID (nsenter into PID 1)")
	}

	// Every RuntimeClass handler is a runtime of the drop-in, and schedules
	// only where the DaemonSet installs it.
	runtimes := dropIn(t, []byte(cm.Data["containerd-hardened.toml"])).Plugins.CRI.Containerd.Runtimes
	for _, rc := range rcs {
		if _, ok := runtimes[rc.Handler]; !ok {
			t.Errorf("RuntimeClass %s: handler %q is not a runtime of the containerd drop-in", rc.Name, rc.Handler)
		}
		if rc.Scheduling == nil || rc.Scheduling.NodeSelector[enabledLabel] != spec.NodeSelector[enabledLabel] || spec.NodeSelector[enabledLabel] == "" {
			t.Errorf("RuntimeClass %s does not schedule onto the nodes the installer runs on (%s)", rc.Name, enabledLabel)
		}
	}
	if len(rcs) != len(runtimes) {
		t.Errorf("%d RuntimeClasses for %d drop-in runtimes", len(rcs), len(runtimes))
	}
}

// dropInConfig mirrors the keys of containerd v2.4.2's CRI runtime config
// (internal/cri/config.Runtime and ContainerdConfig) that a drop-in may
// set; decoding is strict, so a misspelt key fails here instead of being
// ignored with a warning by containerd.
type dropInConfig struct {
	Version int `toml:"version"`
	Plugins struct {
		CRI struct {
			Containerd struct {
				Runtimes map[string]criRuntime `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"io.containerd.cri.v1.runtime"`
		// Only in a drop-in install.sh wrote for an ETC_DIR other than
		// /etc/hardened (containerd v2.4.2 core/runtime/v2 ShimConfig).
		ShimManager *struct {
			Env []string `toml:"env"`
		} `toml:"io.containerd.shim.v1.manager"`
	} `toml:"plugins"`
}

type criRuntime struct {
	Type                         string   `toml:"runtime_type"`
	Path                         string   `toml:"runtime_path"`
	PodAnnotations               []string `toml:"pod_annotations"`
	ContainerAnnotations         []string `toml:"container_annotations"`
	PrivilegedWithoutHostDevices bool     `toml:"privileged_without_host_devices"`
	BaseRuntimeSpec              string   `toml:"base_runtime_spec"`
	Snapshotter                  string   `toml:"snapshotter"`
	Sandboxer                    string   `toml:"sandboxer"`
	// runtimeoptions.v1.Options: containerd decodes this table into it
	// (field names, matched case-insensitively) for a non-runc type. nil:
	// no table at all (an empty table still sends runtimeoptions).
	Options *struct {
		TypeURL    string `toml:"TypeUrl"`
		ConfigPath string `toml:"ConfigPath"`
		ConfigBody string `toml:"ConfigBody"`
	} `toml:"options"`
}

func dropIn(t *testing.T, data []byte) *dropInConfig {
	t.Helper()
	var c dropInConfig
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			t.Fatalf("containerd drop-in: %s", sm.String())
		}
		t.Fatalf("containerd drop-in: %v", err)
	}
	return &c
}

func TestContainerdDropIn(t *testing.T) {
	data, err := os.ReadFile("node/containerd-hardened.toml")
	if err != nil {
		t.Fatal(err)
	}
	c := dropIn(t, data)
	if c.Version != 3 {
		t.Errorf("drop-in version = %d, want 3 (containerd 2.x; 2.4 migrates it to 4)", c.Version)
	}
	// The policy each runtime names in its options table; "" is no table
	// at all. `hardened` must have none: with one, CRI sends
	// runtimeoptions.v1.Options, and containerd's client cannot set the I/O
	// owner of a user-namespaced task (it needs runc options), so pods with
	// hostUsers: false would not start. Its shim reads the policy from
	// /etc/hardened/policy.toml instead.
	policies := map[string]string{
		"hardened":        "",
		"hardened-gvisor": "/etc/hardened/policy-gvisor.toml",
	}
	if c.Plugins.ShimManager != nil {
		t.Errorf("the shipped drop-in sets shim environment %v: it would replace the node's own (install.sh adds it only for another ETC_DIR)", c.Plugins.ShimManager.Env)
	}
	if len(c.Plugins.CRI.Containerd.Runtimes) != len(policies) {
		t.Errorf("drop-in has runtimes %v, want %v", keys(c.Plugins.CRI.Containerd.Runtimes), keys(policies))
	}
	for name, policy := range policies {
		r, ok := c.Plugins.CRI.Containerd.Runtimes[name]
		if !ok {
			t.Errorf("drop-in has no runtime %q", name)
			continue
		}
		if r.Type != runtimeType {
			t.Errorf("runtime %s: runtime_type = %q, want %q", name, r.Type, runtimeType)
		}
		if r.Path != shimPath {
			t.Errorf("runtime %s: runtime_path = %q, want %q (where install.sh puts the shim)", name, r.Path, shimPath)
		}
		if !slices.Contains(r.PodAnnotations, annotationKey) || !slices.Contains(r.ContainerAnnotations, annotationKey) {
			t.Errorf("runtime %s: pod_annotations %q / container_annotations %q must list %q, or the shim never sees them",
				name, r.PodAnnotations, r.ContainerAnnotations, annotationKey)
		}
		switch {
		case policy == "" && r.Options != nil:
			t.Errorf("runtime %s has an options table (%+v): user-namespaced pods could not start on it; the shim reads %s", name, *r.Options, defaultPolicy)
		case policy != "" && (r.Options == nil || r.Options.ConfigPath != policy):
			t.Errorf("runtime %s: options.ConfigPath = %v, want %q", name, r.Options, policy)
		}
		if r.PrivilegedWithoutHostDevices || r.BaseRuntimeSpec != "" {
			t.Errorf("runtime %s: unexpected privileged_without_host_devices/base_runtime_spec", name)
		}
	}
}

// TestConfigMapMatchesNodeFiles keeps the ConfigMap and node/ in step: the
// ConfigMap is generated from node/ (-update), the integration tests use
// node/ directly.
func TestConfigMapMatchesNodeFiles(t *testing.T) {
	want := map[string]string{}
	for _, f := range nodeFiles {
		data, err := os.ReadFile(filepath.Join("node", f))
		if err != nil {
			t.Fatal(err)
		}
		want[f] = string(data)
	}
	if *update {
		cm := corev1.ConfigMap{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{
				Name:      configMapName,
				Namespace: namespace,
				Labels:    map[string]string{"app.kubernetes.io/name": "hardened"},
			},
			Data: want,
		}
		out, err := yaml.Marshal(cm)
		if err != nil {
			t.Fatal(err)
		}
		header := "# GENERATED from deploy/node/ by `go test ./... -update` in deploy/: edit those\n" +
			"# files, not this one. install.sh reads these keys from CONFIG_DIR.\n"
		if err := os.WriteFile(configMapFile, append([]byte(header), out...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(configMapFile)
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := decodeStrict(data, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Name != configMapName {
		t.Errorf("ConfigMap name %q, want %q", cm.Name, configMapName)
	}
	for k, v := range want {
		if cm.Data[k] != v {
			t.Errorf("%s: key %s differs from node/%s: run `go test ./... -update` in deploy/", configMapFile, k, k)
		}
	}
	for k := range cm.Data {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: key %s has no file in node/", configMapFile, k)
		}
	}
}

func TestInstallScriptSyntax(t *testing.T) {
	for _, sh := range []string{"sh", "busybox"} {
		path, err := exec.LookPath(sh)
		if err != nil {
			continue
		}
		args := []string{"-n", "installer/install.sh"}
		if sh == "busybox" {
			// The installer image's shell.
			args = append([]string{"sh"}, args...)
		}
		if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
			t.Errorf("%s %v: %v\n%s", sh, args, err, out)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// runInstall runs install.sh install with the host's / at root (no
// containerd restart), the ConfigMap's files from node/ and stand-in
// shim and runsc wrapper binaries.
func runInstall(t *testing.T, root string, env ...string) (string, error) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"containerd-shim-hardened-v2", "hardened-runsc"} {
		if err := os.WriteFile(filepath.Join(src, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nodeDir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, "installer/install.sh", "install")
	cmd.Env = append(os.Environ(), "HOST_ROOT="+root, "SRC_BIN_DIR="+src, "CONFIG_DIR="+nodeDir, "RESTART_CONTAINERD=false")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestInstallScript runs the installer into a temporary host root: with
// the default paths the drop-in is node/'s as it is and the `hardened`
// runtime's policy lands where the shim looks by default; with another
// ETC_DIR the drop-in also points the shims at the moved policy
// (HARDENED_POLICY), unless containerd's config already has a shim
// environment, which the installer would replace: then it stops.
func TestInstallScript(t *testing.T) {
	shipped, err := os.ReadFile("node/containerd-hardened.toml")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("default paths", func(t *testing.T) {
		root := t.TempDir()
		if out, err := runInstall(t, root); err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(root, defaultPolicy)); err != nil {
			t.Errorf("the hardened runtime's policy is not at the shim's default path: %v", err)
		}
		// The shim looks for its runsc wrapper next to its own binary.
		if fi, err := os.Stat(filepath.Join(root, filepath.Dir(shimPath), "hardened-runsc")); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("hardened-runsc is not installed next to the shim: %v", err)
		}
		got, err := os.ReadFile(filepath.Join(root, "etc/containerd/conf.d/hardened.toml"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, shipped) {
			t.Errorf("installed drop-in differs from node/containerd-hardened.toml:\n%s", got)
		}
	})
	t.Run("moved ETC_DIR", func(t *testing.T) {
		root := t.TempDir()
		if out, err := runInstall(t, root, "ETC_DIR=/var/lib/hardened/etc"); err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		for _, p := range []string{"policy.toml", "policy-gvisor.toml"} {
			if _, err := os.Stat(filepath.Join(root, "var/lib/hardened/etc", p)); err != nil {
				t.Error(err)
			}
		}
		data, err := os.ReadFile(filepath.Join(root, "etc/containerd/conf.d/hardened.toml"))
		if err != nil {
			t.Fatal(err)
		}
		c := dropIn(t, data)
		if c.Plugins.ShimManager == nil || !slices.Equal(c.Plugins.ShimManager.Env, []string{"HARDENED_POLICY=/var/lib/hardened/etc/policy.toml"}) {
			t.Errorf("shim environment %+v, want HARDENED_POLICY=/var/lib/hardened/etc/policy.toml\n%s", c.Plugins.ShimManager, data)
		}
		rts := c.Plugins.CRI.Containerd.Runtimes
		if rts["hardened"].Options != nil {
			t.Errorf("runtime hardened has an options table: %+v", *rts["hardened"].Options)
		}
		if o := rts["hardened-gvisor"].Options; o == nil || o.ConfigPath != "/var/lib/hardened/etc/policy-gvisor.toml" {
			t.Errorf("runtime hardened-gvisor options %+v, want ConfigPath in the moved ETC_DIR", o)
		}
	})
	t.Run("moved ETC_DIR, node has a shim environment", func(t *testing.T) {
		root := t.TempDir()
		conf := filepath.Join(root, "etc/containerd/config.toml")
		if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
			t.Fatal(err)
		}
		main := "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n[plugins.\"io.containerd.shim.v1.manager\"]\n  env = [\"OPERATOR=1\"]\n"
		if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runInstall(t, root, "ETC_DIR=/var/lib/hardened/etc")
		if err == nil || !strings.Contains(out, "HARDENED_POLICY=/var/lib/hardened/etc/policy.toml") {
			t.Fatalf("install.sh did not stop with the variable to add: %v\n%s", err, out)
		}
		t.Logf("install.sh: %s", strings.TrimSpace(out))
		if _, err := os.Stat(filepath.Join(root, "var/lib/hardened/etc/policy.toml")); err == nil {
			t.Error("install.sh stopped but installed the policies first")
		}
		// Once the operator has added it, the installer leaves the table alone.
		main = strings.Replace(main, `["OPERATOR=1"]`, `["OPERATOR=1", "HARDENED_POLICY=/var/lib/hardened/etc/policy.toml"]`, 1)
		if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := runInstall(t, root, "ETC_DIR=/var/lib/hardened/etc"); err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		data, err := os.ReadFile(filepath.Join(root, "etc/containerd/conf.d/hardened.toml"))
		if err != nil {
			t.Fatal(err)
		}
		if c := dropIn(t, data); c.Plugins.ShimManager != nil {
			t.Errorf("the drop-in sets a shim environment the main config already has: %v", c.Plugins.ShimManager.Env)
		}
	})
}
