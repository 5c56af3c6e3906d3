package tomlpos

import (
	"strings"
	"testing"
)

type caseDoc struct {
	DefaultProfile string               `toml:"default_profile"`
	Runtimes       map[string]caseInner `toml:"runtimes"`
	Routes         []caseRoute          `toml:"routes"`
}

type caseInner struct {
	Path string `toml:"path"`
}

type caseRoute struct {
	Match   map[string]string `toml:"match"`
	Scratch []caseInner       `toml:"scratch"`
}

func TestCaseMismatches(t *testing.T) {
	data := []byte(`Default_Profile = "x"
[runtimes.MyRuntime]
PATH = "/bin/x"
[[routes]]
match = { "Some/Key" = "v" }
scratch = [{ Path = "/var/x" }]
`)
	got := CaseMismatches(data, Build(data), &caseDoc{})
	var msgs []string
	for _, p := range got {
		msgs = append(msgs, p.Msg)
	}
	if got[0].Pos.Line != 1 || got[2].Pos.Line != 3 {
		t.Errorf("positions %+v", got)
	}
	want := []string{
		"Default_Profile: keys are case-sensitive: did you mean default_profile",
		"routes[0].scratch[0].Path: keys are case-sensitive: did you mean routes[0].scratch[0].path",
		"runtimes.MyRuntime.PATH: keys are case-sensitive: did you mean runtimes.MyRuntime.path",
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	if got := CaseMismatches([]byte("default_profile = \"x\"\n"), nil, &caseDoc{}); len(got) != 0 {
		t.Errorf("an exact key: %v", got)
	}
}
