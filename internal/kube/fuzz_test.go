package kube

import (
	"testing"
)

// FuzzDecode: whatever the manifests (an adversary writes them: an image
// author, a pod author), Decode returns pods with a complete set of
// requests or an error, and never panics.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: busybox}]\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      hostNetwork: true\n      containers: [{name: c, image: x, securityContext: {privileged: true}}]\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: v}\nspec:\n  securityContext: {runAsUser: 1000, sysctls: [{name: a/b, value: '1'}]}\n  containers:\n  - name: c\n    image: x\n    args: [\"$(A)\", \"$$(B)\"]\n    env: [{name: A, value: x}]\n    volumeMounts: [{name: h, mountPath: /h, subPath: a/b}]\n  volumes: [{name: h, hostPath: {path: /srv}}]\n",
		"---\n---\napiVersion: v1\nkind: List\nitems: []\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pods, err := Decode(data, Options{})
		if err != nil {
			return
		}
		for _, p := range pods {
			if p.Sandbox == nil || p.Sandbox.GetMetadata() == nil || p.Sandbox.GetLinux().GetSecurityContext() == nil {
				t.Fatalf("pod %s without a complete sandbox config", p.Source)
			}
			for _, c := range p.Containers {
				if c.Config == nil || c.Config.GetMetadata().GetName() != c.Name || c.Config.GetLinux().GetSecurityContext() == nil {
					t.Fatalf("pod %s container %s without a complete config", p.Source, c.Name)
				}
			}
		}
	})
}
