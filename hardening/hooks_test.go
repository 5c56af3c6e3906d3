package hardening

import (
	"fmt"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHooks(t *testing.T) {
	allowed := []string{"/usr/libexec/oci/hooks.d/nvidia-hook"}
	ok := specs.Hook{Path: "/usr/libexec/oci/hooks.d/nvidia-hook", Args: []string{"nvidia-hook", "prestart"}}
	bad := specs.Hook{Path: "/tmp/evil"}
	kinds := map[string]func(*specs.Hooks, []specs.Hook){
		//lint:ignore SA1019 runc still runs prestart hooks: the engine must judge them
		"prestart":        func(h *specs.Hooks, v []specs.Hook) { h.Prestart = v },
		"createRuntime":   func(h *specs.Hooks, v []specs.Hook) { h.CreateRuntime = v },
		"createContainer": func(h *specs.Hooks, v []specs.Hook) { h.CreateContainer = v },
		"startContainer":  func(h *specs.Hooks, v []specs.Hook) { h.StartContainer = v },
		"poststart":       func(h *specs.Hooks, v []specs.Hook) { h.Poststart = v },
		"poststop":        func(h *specs.Hooks, v []specs.Hook) { h.Poststop = v },
	}
	if err := checkHooks(nil, nil); err != nil {
		t.Fatal(err)
	}
	for kind, set := range kinds {
		t.Run(kind, func(t *testing.T) {
			h := &specs.Hooks{}
			set(h, []specs.Hook{ok})
			if err := checkHooks(h, allowed); err != nil {
				t.Errorf("allowed hook refused: %v", err)
			}
			if err := checkHooks(h, nil); err == nil {
				t.Errorf("hook accepted with no hook allowed")
			}
			set(h, []specs.Hook{ok, bad})
			re := refusal(t, checkHooks(h, allowed))
			if want := fmt.Sprintf("hooks.%s[1]", kind); re.Rule != RuleHooks || re.Field != want {
				t.Errorf("got %+v, want %s", re, want)
			}
			// Paths are compared exactly.
			set(h, []specs.Hook{{Path: "/usr/libexec/oci/hooks.d/../hooks.d/nvidia-hook"}})
			if err := checkHooks(h, allowed); err == nil {
				t.Errorf("unclean path accepted")
			}
		})
	}
	// Through Harden.
	s := baseSpec()
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{bad}}
	_, _, err := Harden(s, cfgFor(t, "baseline"))
	if re := refusal(t, err); re.Rule != RuleHooks {
		t.Errorf("got %+v", re)
	}
}
