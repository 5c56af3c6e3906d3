package kube

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const etcHostsPath = "/etc/hosts"

// volumeSource is where a volume is on the node, with what its kubelet
// volume plugin says of it (volume.Attributes).
type volumeSource struct {
	path string
	// readOnly: the plugin mounts it read-only whatever the volumeMount
	// says (configMap, secret, projected, downwardAPI).
	readOnly bool
	// relabel: the plugin lets the kubelet relabel it for SELinux
	// (Managed and SELinuxRelabel).
	relabel bool
}

// mounts are the container's mounts as the kubelet's makeMounts
// (kubelet_pods.go) and then the runtime manager's makeMounts
// (kuberuntime_container.go) make them: one per volumeMount, in order;
// then the pod's managed /etc/hosts, unless a volumeMount is at /etc/hosts
// (the kubelet mounts it for hostNetwork pods too, filled from the node's
// /etc/hosts); then the termination message file. With a POD user
// namespace every mount carries its ID mappings.
//
// A volumeMount with a subPath (or a subPathExpr) is mounted from the
// kubelet's bind mount of that subpath,
// <root>/pods/<uid>/volume-subpaths/<volume>/<container>/<mount index>,
// not from the volume's directory.
func (p *podContext) mounts(c *corev1.Container, vars map[string]string, userns *runtimeapi.UserNamespace) ([]*runtimeapi.Mount, error) {
	volumes := map[string]*corev1.Volume{}
	for i := range p.spec.Volumes {
		volumes[p.spec.Volumes[i].Name] = &p.spec.Volumes[i]
	}
	var mounts []*runtimeapi.Mount
	mountHosts := true
	for i, vm := range c.VolumeMounts {
		mountHosts = mountHosts && vm.MountPath != etcHostsPath
		vol, ok := volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		src, err := p.volumeSource(vol)
		if err != nil {
			return nil, err
		}
		hostPath := src.path
		hasSubPath, err := subPath(vm, vars)
		if err != nil {
			return nil, fmt.Errorf("volumeMount %q: %w", vm.Name, err)
		}
		if hasSubPath {
			hostPath = filepath.Join(p.podDir(), "volume-subpaths", vol.Name, c.Name, strconv.Itoa(i))
		}
		propagation, err := mountPropagation(vm.MountPropagation)
		if err != nil {
			return nil, fmt.Errorf("volumeMount %q: %w", vm.Name, err)
		}
		rro, err := recursiveReadOnly(vm)
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, &runtimeapi.Mount{
			ContainerPath:     absolute(vm.MountPath),
			HostPath:          hostPath,
			Readonly:          vm.ReadOnly || src.readOnly,
			SelinuxRelabel:    src.relabel,
			Propagation:       propagation,
			RecursiveReadOnly: rro,
		})
	}
	if mountHosts {
		mounts = append(mounts, &runtimeapi.Mount{
			ContainerPath:  etcHostsPath,
			HostPath:       filepath.Join(p.podDir(), "etc-hosts"),
			SelinuxRelabel: true,
		})
	}
	if c.TerminationMessagePath != "" {
		mounts = append(mounts, &runtimeapi.Mount{
			ContainerPath:  absolute(c.TerminationMessagePath),
			HostPath:       filepath.Join(p.podDir(), "containers", c.Name, p.terminationLogID(c)),
			SelinuxRelabel: true,
		})
	}
	if userns.Mode == runtimeapi.NamespaceMode_POD {
		for _, m := range mounts {
			m.UidMappings = idMappings()
			m.GidMappings = idMappings()
		}
	}
	return mounts, nil
}

// terminationLogID names the container's termination message file. The
// kubelet picks 8 random hex digits at each start; this package derives
// them from the pod's UID and the container's name, so that a manifest
// always gives the same path.
func (p *podContext) terminationLogID(c *corev1.Container) string {
	h := fnv.New32a()
	h.Write([]byte(p.uid + "/" + c.Name))
	return fmt.Sprintf("%08x", h.Sum32())
}

// volumeSource locates a volume as the kubelet's volume plugins do:
//   - hostPath: its path, as written (the kubelet checks its type);
//   - emptyDir (on disk or Memory), configMap, secret, projected (which
//     includes the service account token volume) and downwardAPI:
//     <root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<volume>;
//   - csi (inline): <root>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount.
//
// persistentVolumeClaim and ephemeral volumes are approximated: the kubelet
// mounts the PersistentVolume bound to the claim, at
// .../kubernetes.io~csi/<pv-name>/mount for a CSI volume (other plugins have
// other directories), and the PV's name is not in the manifest; the claim's
// name (<pod>-<volume> for an ephemeral volume) stands in for it. A CSI
// volume that is not read-only is relabelled as the plugin does for a
// driver supporting SELinux. Any other volume type is an error.
func (p *podContext) volumeSource(v *corev1.Volume) (volumeSource, error) {
	volumes := filepath.Join(p.podDir(), "volumes")
	plugin := func(name string, readOnly bool) volumeSource {
		return volumeSource{path: filepath.Join(volumes, "kubernetes.io~"+name, v.Name), readOnly: readOnly, relabel: true}
	}
	csi := func(name string, readOnly bool) volumeSource {
		return volumeSource{path: filepath.Join(volumes, "kubernetes.io~csi", name, "mount"), readOnly: readOnly, relabel: !readOnly}
	}
	switch {
	case v.HostPath != nil:
		return volumeSource{path: v.HostPath.Path}, nil
	case v.EmptyDir != nil:
		return plugin("empty-dir", false), nil
	case v.ConfigMap != nil:
		return plugin("configmap", true), nil
	case v.Secret != nil:
		return plugin("secret", true), nil
	case v.Projected != nil:
		return plugin("projected", true), nil
	case v.DownwardAPI != nil:
		return plugin("downward-api", true), nil
	case v.CSI != nil:
		return csi(v.Name, v.CSI.ReadOnly != nil && *v.CSI.ReadOnly), nil
	case v.PersistentVolumeClaim != nil:
		return csi(v.PersistentVolumeClaim.ClaimName, v.PersistentVolumeClaim.ReadOnly), nil
	case v.Ephemeral != nil:
		return csi(p.name+"-"+v.Name, false), nil
	}
	return volumeSource{}, fmt.Errorf("volume %q: type %s is not supported", v.Name, volumeType(v))
}

// volumeType is the field name of the volume's source ("nfs",
// "awsElasticBlockStore", ...), or "" when it has none.
func volumeType(v *corev1.Volume) string {
	src := reflect.ValueOf(v.VolumeSource)
	for i := range src.NumField() {
		if f := src.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(src.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return ""
}

// subPath tells whether the volumeMount has a subPath, and rejects one the
// kubelet would reject. A subPathExpr is expanded with the container's
// variables first; when it refers to a variable this package does not
// know (from valueFrom or envFrom), the kubelet expands it at run time, so
// it counts as a subPath and is not checked.
func subPath(vm corev1.VolumeMount, vars map[string]string) (bool, error) {
	path := vm.SubPath
	if vm.SubPathExpr != "" {
		var complete bool
		if path, complete = expandKnown(vm.SubPathExpr, vars); !complete {
			return true, nil
		}
	}
	if path == "" {
		return false, nil
	}
	return true, checkSubPath(path)
}

// absolute is the kubelet's MakeAbsolutePath on Linux for a container path.
func absolute(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Clean("/" + path)
}

// mountPropagation is the kubelet's translateMountPropagation.
func mountPropagation(mode *corev1.MountPropagationMode) (runtimeapi.MountPropagation, error) {
	switch {
	case mode == nil, *mode == corev1.MountPropagationNone:
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE, nil
	case *mode == corev1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, nil
	case *mode == corev1.MountPropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, nil
	}
	return 0, fmt.Errorf("invalid MountPropagation mode: %q", *mode)
}

// recursiveReadOnly is the kubelet's resolveRecursiveReadOnly on a runtime
// that supports recursive read-only mounts (containerd 2.x on Linux 5.12
// or later): Enabled and IfPossible both give true, for a read-only mount
// without propagation only.
func recursiveReadOnly(vm corev1.VolumeMount) (bool, error) {
	if vm.RecursiveReadOnly == nil || *vm.RecursiveReadOnly == corev1.RecursiveReadOnlyDisabled {
		return false, nil
	}
	if !vm.ReadOnly {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not read-only", vm.Name)
	}
	if vm.MountPropagation != nil && *vm.MountPropagation != corev1.MountPropagationNone {
		return false, fmt.Errorf("volume %q requested recursive read-only mode, but it is not compatible with propagation %q", vm.Name, *vm.MountPropagation)
	}
	switch *vm.RecursiveReadOnly {
	case corev1.RecursiveReadOnlyIfPossible, corev1.RecursiveReadOnlyEnabled:
		return true, nil
	}
	return false, fmt.Errorf("unknown recursive read-only mode %q", *vm.RecursiveReadOnly)
}

// checkSubPath rejects what the kubelet's makeMounts rejects in a subPath:
// an absolute path, or one climbing out of the volume with "..".
func checkSubPath(subPath string) error {
	if filepath.IsAbs(subPath) {
		return fmt.Errorf("subPath %q must not be an absolute path", subPath)
	}
	for part := range strings.SplitSeq(filepath.ToSlash(subPath), "/") {
		if part == ".." {
			return fmt.Errorf("subPath %q must not contain '..'", subPath)
		}
	}
	return nil
}
