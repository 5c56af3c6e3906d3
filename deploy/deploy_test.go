package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	kustomize "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
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
	readyLabel    = "hardened.dev/ready"
)

// nodeFiles are the ConfigMap's keys: the files install.sh expects in
// CONFIG_DIR, kept as plain files in node/ (kustomization.yaml's
// configMapGenerator reads them).
var nodeFiles = []string{"containerd-hardened.toml", "policy-gvisor.toml", "policy.toml"}

// object is one decoded YAML document.
type object struct {
	file string // the kustomization it came from
	kind string
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
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		return &kustomize.Kustomization{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy":
		return &admissionv1.ValidatingAdmissionPolicy{}, nil
	case "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding":
		return &admissionv1.ValidatingAdmissionPolicyBinding{}, nil
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

// render runs kustomize on a kustomization directory, as `kubectl apply
// -k` does (kubectl embeds the same kustomize API), and returns the YAML.
func render(t *testing.T, dir string) []byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kustomizations are the directories an operator applies.
var kustomizations = []string{"base", "uninstall"}

// decodeAll renders the kustomization at dir and strictly decodes every
// document: an unknown or misspelt field, a duplicate key or a wrong type is
// an error.
func decodeAll(t *testing.T, dir string) []object {
	t.Helper()
	var objs []object
	for i, doc := range splitDocs(render(t, dir)) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Errorf("%s: document %d: %v", dir, i+1, err)
			continue
		}
		obj, err := newObject(tm)
		if err != nil {
			t.Errorf("%s: document %d: %v", dir, i+1, err)
			continue
		}
		if err := decodeStrict(doc, obj); err != nil {
			t.Errorf("%s: document %d (%s): %v", dir, i+1, tm.Kind, err)
			continue
		}
		objs = append(objs, object{file: dir, kind: tm.Kind, obj: obj})
	}
	if len(objs) == 0 {
		t.Fatal("no manifests rendered")
	}
	return objs
}

// TestManifestFilesDecodeStrictly decodes the files themselves too: kustomize
// reads YAML loosely (a duplicate key keeps the last value), so a typo in a
// file must be caught before it renders.
func TestManifestFilesDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob("base/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	files = append(files, "uninstall/kustomization.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(data) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Errorf("%s: document %d: %v", f, i+1, err)
				continue
			}
			obj, err := newObject(tm)
			if err != nil {
				t.Errorf("%s: document %d: %v", f, i+1, err)
				continue
			}
			if err := decodeStrict(doc, obj); err != nil {
				t.Errorf("%s: document %d (%s): %v", f, i+1, tm.Kind, err)
			}
		}
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			objs := decodeAll(t, dir)
			kinds := map[string]int{}
			for _, o := range objs {
				meta, ok := o.obj.(metav1.Object)
				if !ok {
					t.Fatalf("%T has no object metadata", o.obj)
				}
				if rc, ok := o.obj.(*nodev1.RuntimeClass); ok {
					// The API server requires a DNS label; containerd
					// looks the handler up as a runtime name.
					for _, msg := range validation.IsDNS1123Label(rc.Handler) {
						t.Errorf("RuntimeClass %s: handler %q: %s", rc.Name, rc.Handler, msg)
					}
				}
				kinds[o.kind]++
				for _, msg := range validation.IsDNS1123Subdomain(meta.GetName()) {
					t.Errorf("%s: name %q: %s", o.kind, meta.GetName(), msg)
				}
				want := namespace
				switch o.kind {
				case "Role", "RoleBinding":
					// Events about a node live in "default".
					want = "default"
				case "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "RuntimeClass":
					want = "" // cluster-scoped
				}
				if ns := meta.GetNamespace(); o.kind != "Namespace" && ns != want {
					t.Errorf("%s %s is in namespace %q, want %q", o.kind, meta.GetName(), ns, want)
				}
			}
			t.Logf("decoded %v", kinds)
			// A typo in a kind or apiVersion would make a document vanish
			// from this set instead of failing: count them.
			want := map[string]int{
				"Namespace": 1, "ConfigMap": 1, "DaemonSet": 1, "RuntimeClass": 2,
				"ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1,
				"ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1,
			}
			for kind, n := range want {
				if kinds[kind] != n {
					t.Errorf("found %d %s, want %d", kinds[kind], kind, n)
				}
			}
			if len(kinds) != len(want) {
				t.Errorf("rendered kinds %v, want %v", kinds, want)
			}
		})
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
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) { fitTogether(t, dir, decodeAll(t, dir)) })
	}
}

func fitTogether(t *testing.T, dir string, objs []object) {
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
	for _, hostDir := range []string{"/opt/hardened", "/etc/hardened", "/etc/containerd", "/run/containerd"} {
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
		// Only onto nodes where the install proved itself: the installer
		// sets this label after verifying, never the operator.
		if rc.Scheduling == nil || len(rc.Scheduling.NodeSelector) != 1 || rc.Scheduling.NodeSelector[readyLabel] != "true" {
			t.Errorf("RuntimeClass %s schedules on %v, want only %s=true", rc.Name, rc.Scheduling, readyLabel)
		}
	}
	if len(rcs) != len(runtimes) {
		t.Errorf("%d RuntimeClasses for %d drop-in runtimes", len(rcs), len(runtimes))
	}
	if spec.NodeSelector[enabledLabel] != "true" {
		t.Errorf("the DaemonSet does not select the operator's opt-in label %s=true: %v", enabledLabel, spec.NodeSelector)
	}

	// The mode: deploy/ installs, deploy/uninstall uninstalls, with the
	// same image.
	wantMode := map[string]string{"base": "install", "uninstall": "uninstall"}[dir]
	if n := len(install.Command); n == 0 || install.Command[n-1] != wantMode {
		t.Errorf("install container runs %q, want it to end in %q", install.Command, wantMode)
	}
	for _, c := range spec.Containers {
		if c.Image != install.Image {
			t.Errorf("container %s runs image %q, want the installer's %q: the node needs no other image", c.Name, c.Image, install.Image)
		}
	}
	// From the downward API: the node to label, and the pod whose install
	// container's image the verification containers run.
	for name, field := range map[string]string{"NODE_NAME": "spec.nodeName", "POD_UID": "metadata.uid"} {
		found := false
		for _, e := range install.Env {
			if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == field {
				found = true
			}
		}
		if !found {
			t.Errorf("%s does not come from %s", name, field)
		}
	}

	// The ConfigMap is node/'s files, as they are.
	for _, f := range nodeFiles {
		data, err := os.ReadFile(filepath.Join("base", "node", f))
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data[f] != string(data) {
			t.Errorf("ConfigMap key %s is not node/%s", f, f)
		}
	}
	if len(cm.Data) != len(nodeFiles) {
		t.Errorf("ConfigMap keys %v, want %v", keys(cm.Data), nodeFiles)
	}

	// The account: the pod's, bound to its roles, named by the admission
	// policy.
	sas := find[*corev1.ServiceAccount](objs)
	if len(sas) != 1 || spec.ServiceAccountName != sas[0].Name || sas[0].Namespace != ns.Name {
		t.Fatalf("the DaemonSet's account %q is not the one ServiceAccount %v", spec.ServiceAccountName, sas)
	}
	account := "system:serviceaccount:" + ns.Name + ":" + sas[0].Name
	for _, b := range find[*rbacv1.ClusterRoleBinding](objs) {
		if len(b.Subjects) != 1 || b.Subjects[0].Name != sas[0].Name || b.Subjects[0].Namespace != ns.Name {
			t.Errorf("ClusterRoleBinding %s binds %v, want only %s", b.Name, b.Subjects, account)
		}
	}
	for _, b := range find[*rbacv1.RoleBinding](objs) {
		if len(b.Subjects) != 1 || b.Subjects[0].Name != sas[0].Name || b.Subjects[0].Namespace != ns.Name {
			t.Errorf("RoleBinding %s binds %v, want only %s", b.Name, b.Subjects, account)
		}
	}
	for _, r := range find[*rbacv1.ClusterRole](objs) {
		for _, rule := range r.Rules {
			if !slices.Equal(rule.Resources, []string{"nodes"}) || slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Verbs, "update") || slices.Contains(rule.Verbs, "delete") {
				t.Errorf("ClusterRole %s grants %v on %v: the installer needs get and patch on nodes only", r.Name, rule.Verbs, rule.Resources)
			}
		}
	}
	vaps := find[*admissionv1.ValidatingAdmissionPolicy](objs)
	vapbs := find[*admissionv1.ValidatingAdmissionPolicyBinding](objs)
	if len(vaps) != 1 || len(vapbs) != 1 || vapbs[0].Spec.PolicyName != vaps[0].Name || !slices.Equal(vapbs[0].Spec.ValidationActions, []admissionv1.ValidationAction{admissionv1.Deny}) {
		t.Fatalf("want one ValidatingAdmissionPolicy and one Deny binding naming it: %v %v", vaps, vapbs)
	}
	if len(vaps[0].Spec.MatchConditions) != 1 || !strings.Contains(vaps[0].Spec.MatchConditions[0].Expression, "'"+account+"'") {
		t.Errorf("the admission policy does not match the installer's account %s: %+v", account, vaps[0].Spec.MatchConditions)
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
	data, err := os.ReadFile("base/node/containerd-hardened.toml")
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
	for _, b := range []string{"containerd-shim-hardened-v2", "hardened-runsc", "hardenctl"} {
		if err := os.WriteFile(filepath.Join(src, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nodeDir, err := filepath.Abs(filepath.Join("base", "node"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, "installer/install.sh", "install")
	cmd.Env = append(os.Environ(), "HOST_ROOT="+root, "SRC_BIN_DIR="+src, "CONFIG_DIR="+nodeDir, "RESTART_CONTAINERD=false", "VERIFY=false")
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
	shipped, err := os.ReadFile("base/node/containerd-hardened.toml")
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

// TestImageIsOneValue: the image is set once, in base/kustomization.yaml's
// images, and every container follows (the verification containers find
// the install container's image through the CRI, so an overlay that
// renames the image needs nothing else).
func TestImageIsOneValue(t *testing.T) {
	tmp := t.TempDir()
	if err := os.CopyFS(filepath.Join(tmp, "base"), os.DirFS("base")); err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(tmp, "base", "kustomization.yaml")
	data, err := os.ReadFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	edited := regexp.MustCompile(`(?m)^(\s+newTag:).*$`).ReplaceAll(data, []byte("${1} v9.9.9-test\n    newName: registry.example/hardened-installer"))
	if bytes.Equal(edited, data) {
		t.Fatal("no newTag in base/kustomization.yaml")
	}
	if err := os.WriteFile(kf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	const want = "registry.example/hardened-installer:v9.9.9-test"
	objs := decodeAll(t, filepath.Join(tmp, "base"))
	ds := find[*appsv1.DaemonSet](objs)[0]
	spec := ds.Spec.Template.Spec
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		if c.Image != want {
			t.Errorf("container %s: image %q, want %q", c.Name, c.Image, want)
		}
	}
}
