package hardening

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkHooks refuses every OCI hook whose path the node policy does not
// allow. Runtime hooks (prestart, createRuntime, poststart, poststop) run
// as root in the host's namespaces with the container's state on stdin:
// a hook path in a spec is host code execution for whoever wrote the spec,
// and the container hooks run before the seccomp filter and the capability
// drop. Paths are compared exactly; the policy vouches for the binaries it
// lists (and their arguments are not inspected).
func checkHooks(h *specs.Hooks, allowed []string) error {
	if h == nil {
		return nil
	}
	kinds := []struct {
		name  string
		hooks []specs.Hook
	}{
		//lint:ignore SA1019 deprecated, but runc still runs it: judged like the others
		{"prestart", h.Prestart},
		{"createRuntime", h.CreateRuntime},
		{"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer},
		{"poststart", h.Poststart},
		{"poststop", h.Poststop},
	}
	for _, k := range kinds {
		for i, hook := range k.hooks {
			if indexOf(allowed, hook.Path) < 0 {
				return refuse(RuleHooks, fmt.Sprintf("hooks.%s[%d]", k.name, i), "hook %q is not allowed by the node policy", hook.Path)
			}
		}
	}
	return nil
}
