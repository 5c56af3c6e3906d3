// Package kube reads Kubernetes manifests and produces, for each pod they
// describe, the CRI requests the kubelet (Kubernetes v1.37,
// pkg/kubelet/kuberuntime) would send to containerd for it: the
// PodSandboxConfig of RunPodSandbox and one ContainerConfig per init
// container and container for CreateContainer.
//
// The kubelet builds those requests from a pod that the API server has
// already defaulted and admitted, and from facts of its node. This package
// applies the API server's defaults that matter for the requests (see
// applyDefaults) and takes the node facts from Options, from the machine it
// runs on where the kubelet would read its own node (memory, CPUs), or from
// the kubelet's default configuration. What admission
// controllers add on a real cluster is not added: above all the projected
// service account token volume ("kube-api-access-*") that the
// ServiceAccount admission plugin injects into every pod; it appears here
// only when the manifest itself declares it.
//
// Node facts this package assumes, as the kubelet would find them on a
// typical v1.37 node with containerd 2.x:
//   - the kubelet's seccompDefault is false (its default), so a container
//     without a seccomp profile is sent as Unconfined;
//   - SELinux is enabled on the node: the kubelet ANDs every mount's
//     selinux_relabel with selinux.GetEnabled(), and this package reports the
//     value of an SELinux node (on a node without SELinux they are all false,
//     and containerd would ignore them anyway);
//   - the runtime supports recursive read-only mounts;
//   - the UserNamespacesSupport feature is on (its default), so every
//     namespace option carries a user namespace (NODE unless hostUsers is
//     false);
//   - the cluster DNS and the node's resolv.conf are unknown (see dnsConfig).
package kube

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"
)

const (
	defaultKubeletRoot = "/var/lib/kubelet"
	defaultPodLogsRoot = "/var/log/pods"
	defaultNamespace   = "default"
	// templateSuffix names the pod made from a workload's pod template:
	// controllers add a random or ordinal suffix, this package a fixed one.
	templateSuffix = "-explain"
)

// Options are the node facts the kubelet would use.
type Options struct {
	// KubeletRoot is the kubelet's --root-dir, default "/var/lib/kubelet".
	// Volumes are at <root>/pods/<uid>/volumes/<plugin~escaped>/<name>
	// (kubernetes.io~empty-dir, kubernetes.io~configmap,
	// kubernetes.io~secret, kubernetes.io~projected, ...), the managed hosts
	// file at <root>/pods/<uid>/etc-hosts, termination logs at
	// <root>/pods/<uid>/containers/<ctr>/<id> and localhost seccomp
	// profiles under <root>/seccomp.
	KubeletRoot string
	// PodLogsRoot is the kubelet's podLogsDir, default "/var/log/pods": the
	// sandbox's log_directory is <root>/<ns>_<name>_<uid>.
	PodLogsRoot string
	// CgroupParent is the pod's cgroup parent as the kubelet would pass it
	// (it depends on the cgroup driver and the pod's QoS class); empty
	// leaves it empty.
	CgroupParent string
}

// Pod is one pod: a Pod document, or the pod template of a Deployment,
// StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job or CronJob.
type Pod struct {
	// Source is the kind and name of the document ("Pod/web",
	// "Deployment/web"), or the kind and the document's place in the input
	// when it has no name.
	Source string
	// Name is the pod's name; for a template, the workload's name plus
	// "-explain". Namespace defaults to "default". UID is metadata.uid, or
	// a fixed value derived from namespace/name when that is empty.
	Name, Namespace, UID string
	// RuntimeClassName is spec.runtimeClassName ("" if none).
	RuntimeClassName string
	// Handler is the CRI runtime handler of RunPodSandbox: the handler of
	// the RuntimeClass of that name given in the same input, else the
	// RuntimeClassName itself; "" when there is none.
	Handler string
	// Sandbox is the RunPodSandbox config.
	Sandbox *runtimeapi.PodSandboxConfig
	// Containers are the init containers (in order), then the containers;
	// ephemeral containers are not included.
	Containers []Container
}

// Container is the CreateContainer request of one container of a Pod.
type Container struct {
	Name   string
	Init   bool
	Image  string
	Config *runtimeapi.ContainerConfig
}

// servedVersions are the kinds Decode reads, with the one apiVersion
// Kubernetes v1.37 serves them at.
var servedVersions = map[string]string{
	"Pod":                   "v1",
	"ReplicationController": "v1",
	"List":                  "v1",
	"Deployment":            "apps/v1",
	"StatefulSet":           "apps/v1",
	"DaemonSet":             "apps/v1",
	"ReplicaSet":            "apps/v1",
	"Job":                   "batch/v1",
	"CronJob":               "batch/v1",
	"RuntimeClass":          "node.k8s.io/v1",
}

// builtinGroups are the API groups of servedVersions and their retired
// predecessors: a known kind at another version of these groups is an error
// (it is no longer served), while one in any other group (a custom resource
// that happens to share the kind) is skipped.
var builtinGroups = map[string]bool{"": true, "apps": true, "extensions": true, "batch": true, "node.k8s.io": true}

// Decode reads every document of data (YAML or JSON, several documents
// separated by "---"; a v1 List is read item by item) and returns the pods
// they describe, in input order. Other kinds (Service, ConfigMap, ...) are
// skipped, except RuntimeClass (node.k8s.io/v1), whose handlers are used for
// the pods' Handler wherever the RuntimeClass appears in the input.
// Decoding is strict: an unknown or duplicated field is an error naming it.
// An input without any pod is an error.
func Decode(data []byte, o Options) ([]Pod, error) {
	if o.KubeletRoot == "" {
		o.KubeletRoot = defaultKubeletRoot
	}
	if o.PodLogsRoot == "" {
		o.PodLogsRoot = defaultPodLogsRoot
	}
	d := decoder{handlers: map[string]string{}}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("kube: document %d: %w", n, err)
		}
		if err := d.add(doc, fmt.Sprintf("document %d", n)); err != nil {
			return nil, fmt.Errorf("kube: %w", err)
		}
	}
	if len(d.pods) == 0 {
		return nil, errors.New("kube: no pod in the input (no Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job or CronJob)")
	}
	pods := make([]Pod, 0, len(d.pods))
	for _, pd := range d.pods {
		pod, err := pd.build(d.handlers, o)
		if err != nil {
			return nil, fmt.Errorf("kube: %s: %w", pd.source, err)
		}
		pods = append(pods, pod)
	}
	return pods, nil
}

// decoder collects the pods and RuntimeClass handlers of the documents.
type decoder struct {
	pods     []*podDoc
	handlers map[string]string
}

// podDoc is a pod as read, before it is turned into CRI requests.
type podDoc struct {
	source          string
	name, namespace string
	meta            metav1.ObjectMeta // labels, annotations, uid of the pod (or template)
	spec            corev1.PodSpec
}

// add decodes one document; where says which one, for messages.
func (d *decoder) add(doc []byte, where string) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if string(bytes.TrimSpace(js)) == "null" {
		return nil // only comments, or empty
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return fmt.Errorf("%s: not an object: %w", where, err)
	}
	if head.Kind == "" {
		return fmt.Errorf("%s: no kind", where)
	}
	source := head.Kind + "/" + head.Metadata.Name
	if head.Metadata.Name == "" {
		source = head.Kind + " (" + where + ")"
	}
	served, known := servedVersions[head.Kind]
	if !known || (head.APIVersion != served && !builtinGroups[apiGroup(head.APIVersion)]) {
		return nil
	}
	if head.APIVersion == "" {
		return fmt.Errorf("%s: no apiVersion", source)
	}
	if head.APIVersion != served {
		return fmt.Errorf("%s: %s %s is not served by Kubernetes v1.37 (use %s)", source, head.APIVersion, head.Kind, served)
	}
	strict := func(obj any) error {
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		return nil
	}
	switch head.Kind {
	case "Pod":
		var p corev1.Pod
		if err := strict(&p); err != nil {
			return err
		}
		d.addPod(source, p.ObjectMeta, p.Spec)
	case "ReplicationController":
		var rc corev1.ReplicationController
		if err := strict(&rc); err != nil {
			return err
		}
		if rc.Spec.Template == nil {
			return fmt.Errorf("%s: no spec.template", source)
		}
		d.addTemplate(source, head.Kind, rc.ObjectMeta, *rc.Spec.Template)
	case "Deployment":
		var w appsv1.Deployment
		if err := strict(&w); err != nil {
			return err
		}
		d.addTemplate(source, head.Kind, w.ObjectMeta, w.Spec.Template)
	case "StatefulSet":
		var w appsv1.StatefulSet
		if err := strict(&w); err != nil {
			return err
		}
		d.addTemplate(source, head.Kind, w.ObjectMeta, w.Spec.Template)
	case "DaemonSet":
		var w appsv1.DaemonSet
		if err := strict(&w); err != nil {
			return err
		}
		d.addTemplate(source, head.Kind, w.ObjectMeta, w.Spec.Template)
	case "ReplicaSet":
		var w appsv1.ReplicaSet
		if err := strict(&w); err != nil {
			return err
		}
		d.addTemplate(source, head.Kind, w.ObjectMeta, w.Spec.Template)
	case "Job":
		var w batchv1.Job
		if err := strict(&w); err != nil {
			return err
		}
		d.addTemplate(source, head.Kind, w.ObjectMeta, w.Spec.Template)
	case "CronJob":
		var w batchv1.CronJob
		if err := strict(&w); err != nil {
			return err
		}
		d.addTemplate(source, head.Kind, w.ObjectMeta, w.Spec.JobTemplate.Spec.Template)
	case "RuntimeClass":
		var rc nodev1.RuntimeClass
		if err := strict(&rc); err != nil {
			return err
		}
		d.handlers[rc.Name] = rc.Handler
	case "List":
		var l corev1.List
		if err := strict(&l); err != nil {
			return err
		}
		for i, item := range l.Items {
			if err := d.add(item.Raw, fmt.Sprintf("%s item %d", where, i+1)); err != nil {
				return err
			}
		}
	}
	return nil
}

// addPod adds a Pod document. A pod without a name (only generateName, or
// neither) is named like a template's pod.
func (d *decoder) addPod(source string, meta metav1.ObjectMeta, spec corev1.PodSpec) {
	name := meta.Name
	if name == "" {
		name = derivedName(meta, "pod")
	}
	d.pods = append(d.pods, &podDoc{source: source, name: name, namespace: namespaceOf(meta), meta: meta, spec: spec})
}

// addTemplate adds the pod a workload's controller would create from its
// template: in the workload's namespace, named after the workload, with the
// template's labels and annotations. Labels that controllers add
// (pod-template-hash, controller-revision-hash, job-name, ...) are not.
func (d *decoder) addTemplate(source, kind string, workload metav1.ObjectMeta, tmpl corev1.PodTemplateSpec) {
	meta := tmpl.ObjectMeta
	meta.Namespace = workload.Namespace
	d.pods = append(d.pods, &podDoc{
		source:    source,
		name:      derivedName(workload, strings.ToLower(kind)),
		namespace: namespaceOf(workload),
		meta:      meta,
		spec:      tmpl.Spec,
	})
}

// derivedName is meta's name (or generateName, or fallback) plus
// templateSuffix.
func derivedName(meta metav1.ObjectMeta, fallback string) string {
	base := meta.Name
	if base == "" {
		base = strings.TrimSuffix(meta.GenerateName, "-")
	}
	if base == "" {
		base = fallback
	}
	return base + templateSuffix
}

func namespaceOf(meta metav1.ObjectMeta) string {
	if meta.Namespace == "" {
		return defaultNamespace
	}
	return meta.Namespace
}

// apiGroup is the group of an apiVersion ("" for the core group's "v1").
func apiGroup(apiVersion string) string {
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		return ""
	}
	return group
}

// derivedUID is a UUID (version 5 layout) made from namespace/name, so that
// the same manifest always yields the same paths.
func derivedUID(namespace, name string) string {
	sum := sha1.Sum([]byte("hardened.dev/kube-explain:" + namespace + "/" + name))
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

// build turns the pod into its CRI requests.
func (pd *podDoc) build(handlers map[string]string, o Options) (Pod, error) {
	spec := pd.spec
	applyDefaults(&spec)
	if err := validate(&spec); err != nil {
		return Pod{}, err
	}
	uid := string(pd.meta.UID)
	if uid == "" {
		uid = derivedUID(pd.namespace, pd.name)
	}
	p := &podContext{
		name:      pd.name,
		namespace: pd.namespace,
		uid:       uid,
		meta:      pd.meta,
		spec:      &spec,
		opts:      o,
	}
	pod := Pod{Source: pd.source, Name: p.name, Namespace: p.namespace, UID: uid}
	if rc := spec.RuntimeClassName; rc != nil && *rc != "" {
		pod.RuntimeClassName = *rc
		pod.Handler = *rc
		if h, ok := handlers[*rc]; ok {
			pod.Handler = h
		}
	}
	var err error
	if pod.Sandbox, err = p.sandboxConfig(); err != nil {
		return Pod{}, err
	}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		cfg, err := p.containerConfig(c)
		if err != nil {
			return Pod{}, fmt.Errorf("init container %q: %w", c.Name, err)
		}
		pod.Containers = append(pod.Containers, Container{Name: c.Name, Init: true, Image: c.Image, Config: cfg})
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		cfg, err := p.containerConfig(c)
		if err != nil {
			return Pod{}, fmt.Errorf("container %q: %w", c.Name, err)
		}
		pod.Containers = append(pod.Containers, Container{Name: c.Name, Image: c.Image, Config: cfg})
	}
	return pod, nil
}

// podContext is a defaulted pod and the node facts, from which the
// sandbox and container configs are made.
type podContext struct {
	name, namespace, uid string
	meta                 metav1.ObjectMeta
	spec                 *corev1.PodSpec
	opts                 Options
}

// podDir is the kubelet's directory of the pod, <root>/pods/<uid>.
func (p *podContext) podDir() string {
	return filepath.Join(p.opts.KubeletRoot, "pods", p.uid)
}

// applyDefaults applies the API server's defaults (SetDefaults_PodSpec,
// SetDefaults_Container, ...) that the kubelet's requests depend on: a pod
// reaches the kubelet only after them.
func applyDefaults(spec *corev1.PodSpec) {
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		spec.TerminationGracePeriodSeconds = &grace
	}
	for i := range spec.Volumes {
		if volumeType(&spec.Volumes[i]) == "" { // a volume without a source is an emptyDir
			spec.Volumes[i].EmptyDir = &corev1.EmptyDirVolumeSource{}
		}
	}
	containers := make([]*corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	for i := range spec.InitContainers {
		containers = append(containers, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		containers = append(containers, &spec.Containers[i])
	}
	for _, c := range containers {
		if c.TerminationMessagePath == "" {
			c.TerminationMessagePath = corev1.TerminationMessagePathDefault
		}
		if c.TerminationMessagePolicy == "" {
			c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
		}
		for i := range c.Ports {
			port := &c.Ports[i]
			if port.Protocol == "" {
				port.Protocol = corev1.ProtocolTCP
			}
			if spec.HostNetwork && port.HostPort == 0 {
				port.HostPort = port.ContainerPort
			}
		}
		// A limit without a request makes the request equal the limit.
		for name, limit := range c.Resources.Limits {
			if _, ok := c.Resources.Requests[name]; !ok {
				if c.Resources.Requests == nil {
					c.Resources.Requests = corev1.ResourceList{}
				}
				c.Resources.Requests[name] = limit.DeepCopy()
			}
		}
	}
}

// validate rejects what the API server's validation would reject and this
// package would otherwise turn into a misleading request: a container
// asking for no_new_privs together with privileges it cannot keep.
func validate(spec *corev1.PodSpec) error {
	check := func(c *corev1.Container) error {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			return nil
		}
		if sc.Privileged != nil && *sc.Privileged {
			return fmt.Errorf("container %q: cannot set allowPrivilegeEscalation to false and privileged to true", c.Name)
		}
		// The API server checks this exact spelling only: "SYS_ADMIN" with
		// allowPrivilegeEscalation false is admitted, and the kubelet then
		// sends no_new_privs together with CAP_SYS_ADMIN.
		if sc.Capabilities != nil {
			for _, add := range sc.Capabilities.Add {
				if add == "CAP_SYS_ADMIN" {
					return fmt.Errorf("container %q: cannot set allowPrivilegeEscalation to false and capabilities.add CAP_SYS_ADMIN", c.Name)
				}
			}
		}
		return nil
	}
	for i := range spec.InitContainers {
		if err := check(&spec.InitContainers[i]); err != nil {
			return err
		}
	}
	for i := range spec.Containers {
		if err := check(&spec.Containers[i]); err != nil {
			return err
		}
	}
	return nil
}
