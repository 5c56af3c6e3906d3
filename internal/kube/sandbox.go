package kube

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// clusterDomain is the kubelet's --cluster-domain on most clusters; it
	// only shows in the hostname of a pod with setHostnameAsFQDN.
	clusterDomain = "cluster.local"
	// hostnameMaxLen and fqdnMaxLen are the kubelet's limits on a pod's
	// hostname and on the FQDN it sets as the hostname.
	hostnameMaxLen = 63
	fqdnMaxLen     = 64
)

// sandboxConfig is the kubelet's generatePodSandboxConfig: metadata
// (attempt 0), the pod's labels plus the kubelet's io.kubernetes.pod.*
// labels, the pod's annotations, hostname, log directory, DNS, port
// mappings and the Linux config. Overhead and pod-level resources
// (applySandboxResources) are left nil.
func (p *podContext) sandboxConfig() (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      p.name,
			Namespace: p.namespace,
			Uid:       p.uid,
		},
		LogDirectory: filepath.Join(p.opts.PodLogsRoot, p.namespace+"_"+p.name+"_"+p.uid),
		DnsConfig:    dnsConfig(p.spec),
		PortMappings: portMappings(p.spec),
		Labels:       p.podLabels(),
		Annotations:  maps.Clone(p.meta.Annotations),
	}
	// The kubelet leaves the hostname of a hostNetwork pod empty; containerd
	// then uses the node's hostname (os.Hostname) for the sandbox.
	if !p.spec.HostNetwork {
		hostname, err := p.hostname()
		if err != nil {
			return nil, err
		}
		cfg.Hostname = hostname
	}
	linux, err := p.sandboxLinuxConfig()
	if err != nil {
		return nil, err
	}
	cfg.Linux = linux
	return cfg, nil
}

// podLabels are the pod's labels plus the kubelet's
// io.kubernetes.pod.{name,namespace,uid}.
func (p *podContext) podLabels() map[string]string {
	labels := maps.Clone(p.meta.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels["io.kubernetes.pod.name"] = p.name
	labels["io.kubernetes.pod.namespace"] = p.namespace
	labels["io.kubernetes.pod.uid"] = p.uid
	return labels
}

// hostname is the kubelet's GeneratePodHostNameAndDomain followed by
// GetNodenameForKernel: spec.hostnameOverride if set, else spec.hostname,
// else the pod's name, cut to 63 characters; with setHostnameAsFQDN and a
// subdomain, the FQDN <hostname>.<subdomain>.<ns>.svc.cluster.local.
func (p *podContext) hostname() (string, error) {
	if o := p.spec.HostnameOverride; o != nil {
		return truncateHostname(*o)
	}
	hostname := p.name
	if p.spec.Hostname != "" {
		hostname = p.spec.Hostname
	}
	hostname, err := truncateHostname(hostname)
	if err != nil {
		return "", err
	}
	if p.spec.Subdomain == "" || p.spec.SetHostnameAsFQDN == nil || !*p.spec.SetHostnameAsFQDN {
		return hostname, nil
	}
	fqdn := hostname + "." + p.spec.Subdomain + "." + p.namespace + ".svc." + clusterDomain
	if len(fqdn) > fqdnMaxLen {
		return "", fmt.Errorf("FQDN %s is too long (%d characters is the max, %d requested)", fqdn, fqdnMaxLen, len(fqdn))
	}
	return fqdn, nil
}

// truncateHostname cuts a hostname to 63 characters, then drops the
// trailing '-' and '.' the cut may leave.
func truncateHostname(hostname string) (string, error) {
	if len(hostname) <= hostnameMaxLen {
		return hostname, nil
	}
	truncated := strings.TrimRight(hostname[:hostnameMaxLen], "-.")
	if truncated == "" {
		return "", fmt.Errorf("hostname %q is invalid", hostname)
	}
	return truncated, nil
}

// dnsConfig stands in for the kubelet's GetPodDNS. The kubelet sends the
// cluster DNS servers and search path (ClusterFirst), or the node's
// resolv.conf (Default, or ClusterFirst on hostNetwork), each with the pod's
// dnsConfig appended: node facts this package does not have, so it returns
// nil for them. Only with dnsPolicy None, where the pod's dnsConfig is the
// whole answer, is the kubelet's config returned.
func dnsConfig(spec *corev1.PodSpec) *runtimeapi.DNSConfig {
	if spec.DNSPolicy != corev1.DNSNone || spec.DNSConfig == nil {
		return nil
	}
	cfg := &runtimeapi.DNSConfig{
		Servers:  dedupe(spec.DNSConfig.Nameservers),
		Searches: dedupe(spec.DNSConfig.Searches),
	}
	seen := map[string]int{} // a later option of the same name replaces the earlier one
	for _, opt := range spec.DNSConfig.Options {
		s := opt.Name
		if opt.Value != nil {
			s += ":" + *opt.Value
		}
		if i, ok := seen[opt.Name]; ok {
			cfg.Options[i] = s
			continue
		}
		seen[opt.Name] = len(cfg.Options)
		cfg.Options = append(cfg.Options, s)
	}
	return cfg
}

// dedupe keeps the first of each string, in order.
func dedupe(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// portMappings are the kubelet's: every port of every (non-init) container,
// with a hostPort or not (the runtime maps those with one), skipping a port
// whose name, or for an unnamed port whose family, protocol, host IP and
// ports, a container already used.
func portMappings(spec *corev1.PodSpec) []*runtimeapi.PortMapping {
	var mappings []*runtimeapi.PortMapping
	for _, c := range spec.Containers {
		names := map[string]bool{}
		for _, port := range c.Ports {
			name := port.Name
			if name == "" {
				family := "any"
				if port.HostIP != "" {
					family = "v4"
					if addr, err := netip.ParseAddr(port.HostIP); err == nil && addr.Is6() && !addr.Is4In6() {
						family = "v6"
					}
				}
				name = fmt.Sprintf("%s-%s-%s:%d:%d", family, port.Protocol, port.HostIP, port.ContainerPort, port.HostPort)
			}
			if names[name] {
				continue
			}
			names[name] = true
			mappings = append(mappings, &runtimeapi.PortMapping{
				Protocol:      runtimeProtocol(port.Protocol),
				ContainerPort: port.ContainerPort,
				HostPort:      port.HostPort,
				HostIp:        port.HostIP,
			})
		}
	}
	return mappings
}

// runtimeProtocol is the kubelet's toRuntimeProtocol: TCP unless UDP or
// SCTP.
func runtimeProtocol(p corev1.Protocol) runtimeapi.Protocol {
	switch p {
	case corev1.ProtocolUDP:
		return runtimeapi.Protocol_UDP
	case corev1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP
	default:
		return runtimeapi.Protocol_TCP
	}
}

// sandboxLinuxConfig is the kubelet's generatePodSandboxLinuxConfig. The
// sandbox's seccomp profile is always RuntimeDefault (the kubelet forces
// it, whatever the pod asks); privileged is true when any container,
// init container or ephemeral container is privileged; user, group,
// supplemental groups and SELinux options come from the pod's
// securityContext; readonly_rootfs is false.
func (p *podContext) sandboxLinuxConfig() (*runtimeapi.LinuxPodSandboxConfig, error) {
	psc := p.spec.SecurityContext // never nil after applyDefaults
	sc := &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions:   namespaceOptions(p.spec),
		SelinuxOptions:     seLinuxOptions(psc.SELinuxOptions),
		RunAsUser:          int64Value(psc.RunAsUser),
		RunAsGroup:         int64Value(psc.RunAsGroup),
		SupplementalGroups: supplementalGroups(psc),
		Privileged:         hasPrivilegedContainer(p.spec),
		Seccomp:            &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
	}
	policy, err := supplementalGroupsPolicy(psc)
	if err != nil {
		return nil, err
	}
	sc.SupplementalGroupsPolicy = policy
	sysctls := make(map[string]string, len(psc.Sysctls))
	for _, s := range psc.Sysctls {
		sysctls[dotSeparatedSysctl(s.Name)] = s.Value
	}
	return &runtimeapi.LinuxPodSandboxConfig{
		CgroupParent:    p.opts.CgroupParent,
		SecurityContext: sc,
		Sysctls:         sysctls,
	}, nil
}

// dotSeparatedSysctl is the kubelet's ConvertPodSysctlsVariableToDotsSeparator
// for one name: a name whose first separator is '/' ("net/ipv4/ip_forward")
// has its '/' and '.' swapped, as sysctl.d(5) reads it.
func dotSeparatedSysctl(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}

// hasPrivilegedContainer is the kubelet's HasPrivilegedContainer: any init,
// regular or ephemeral container with privileged true.
func hasPrivilegedContainer(spec *corev1.PodSpec) bool {
	privileged := func(sc *corev1.SecurityContext) bool {
		return sc != nil && sc.Privileged != nil && *sc.Privileged
	}
	for _, c := range spec.InitContainers {
		if privileged(c.SecurityContext) {
			return true
		}
	}
	for _, c := range spec.Containers {
		if privileged(c.SecurityContext) {
			return true
		}
	}
	for _, c := range spec.EphemeralContainers {
		if privileged(c.SecurityContext) {
			return true
		}
	}
	return false
}
