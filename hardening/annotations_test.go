package hardening

import (
	"maps"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestAnnotations(t *testing.T) {
	stripped := []string{
		"dev.gvisor.flag.debug",
		"dev.gvisor.flag.net-raw",
		"dev.gvisor.internal.anything",
		"org.systemd.property.DeviceAllow",
		"org.criu.config",
		"io.katacontainers.config.hypervisor.path",
		"io.containers.trace-syscall",
		"io.containerd.runc.v2.group",
		"run.oci.seccomp_bpf_data",
		"bundle",
		"dev.gvisor.flagship", // in runsc's namespace, and not allowed
		"dev.gvisor.bundle.experimental-high-performance",
		"dev.gvisor.spec.cgroup-parent",
		"dev.gvisor.spec.rootfs.source",
		"dev.gvisor.tar.rootfs.upper",
		"org.criu.config.extra",
		"org.opencontainers.runc.anything",
		"io.kubernetes.cri-o.SandboxID",
	}
	kept := []string{
		"io.kubernetes.cri.sandbox-id",
		"io.kubernetes.cri.container-type",
		"hardened.dev/profile",
		"dev.gvisor.spec.mount.data.share",
		"org.opencontainers.image.source",
		"bundles",
		"example.com/owner",
	}
	s := &specs.Spec{Annotations: map[string]string{}}
	for _, k := range append(slices.Clone(stripped), kept...) {
		s.Annotations[k] = "value-" + secret
	}
	r := &Report{}
	stripAnnotations(s, r)
	if got := slices.Sorted(maps.Keys(s.Annotations)); !slices.Equal(got, slices.Sorted(slices.Values(kept))) {
		t.Errorf("kept %v, want %v", got, kept)
	}
	if len(r.Changes) != len(stripped) {
		t.Fatalf("%d changes, want %d", len(r.Changes), len(stripped))
	}
	for i, c := range r.Changes {
		if strings.Contains(c.Before+c.After, secret) {
			t.Errorf("change %d leaks a value: %+v", i, c)
		}
		if i > 0 && c.Field < r.Changes[i-1].Field {
			t.Errorf("changes not sorted: %v", r.Changes)
		}
	}
	if err := checkAnnotations(s); err != nil {
		t.Error(err)
	}
	s.Annotations["org.criu.config"] = "/x"
	if re := refusal(t, checkAnnotations(s)); re.Rule != RuleAnnotations {
		t.Errorf("got %+v", re)
	}
	// This project's own keys: only those it knows.
	s.Annotations = map[string]string{"hardened.dev/profle": "strict"}
	if re := refusal(t, checkAnnotations(s)); re.Field != "annotations.hardened.dev/profle" {
		t.Errorf("unknown hardened.dev key: %+v", re)
	}
	// No annotations at all.
	stripAnnotations(&specs.Spec{}, r)
}
