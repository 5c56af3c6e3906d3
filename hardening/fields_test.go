package hardening

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	goldenfile "github.com/hardened-dev/hardened/internal/golden"
)

// specField is one field of the specs-go types: its table path and type.
type specField struct {
	path string
	typ  reflect.Type
}

// specFields walks the specs-go types from specs.Spec and returns every
// leaf field (a value that is not a struct, a list of structs or a map of
// structs), by JSON name: "[]" for a list's elements, "{}" for a map's
// values, "*" for the kind of a hook.
func specFields() []specField {
	var out []specField
	var walk func(t reflect.Type, p string)
	walk = func(t reflect.Type, p string) {
		switch t.Kind() {
		case reflect.Pointer:
			walk(t.Elem(), p)
			return
		case reflect.Slice:
			if e := t.Elem(); e.Kind() == reflect.Struct {
				walk(e, p+"[]")
				return
			}
		case reflect.Map:
			if e := t.Elem(); e.Kind() == reflect.Struct {
				walk(e, p+"{}")
				return
			}
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				if f.Anonymous {
					walk(f.Type, p)
					continue
				}
				name := strings.Split(f.Tag.Get("json"), ",")[0]
				if p == "hooks" {
					name = "*"
				}
				q := name
				if p != "" {
					q = p + "." + name
				}
				walk(f.Type, q)
			}
			return
		}
		out = append(out, specField{p, t})
	}
	walk(reflect.TypeFor[specs.Spec](), "")
	return out
}

// ruleFor returns the table's rule for a leaf path: its own, or a refused
// ancestor's (which covers everything under it).
func ruleFor(path string) (FieldRule, bool) {
	for _, r := range FieldRules {
		if r.Field == path {
			return r, true
		}
	}
	for _, r := range FieldRules {
		if r.Disposition == Refused && strings.HasPrefix(path, r.Field) && len(path) > len(r.Field) && strings.ContainsRune("[{.", rune(path[len(r.Field)])) {
			return r, true
		}
	}
	return FieldRule{}, false
}

// TestEveryFieldHasARule: every field of the runtime spec has a
// disposition, and every entry of the table names a field that exists. A
// runtime-spec upgrade that adds a field fails here until someone decides.
func TestEveryFieldHasARule(t *testing.T) {
	fields := specFields()
	if len(fields) < 200 {
		t.Fatalf("walked only %d fields", len(fields))
	}
	covered := map[string]bool{}
	for _, f := range fields {
		r, ok := ruleFor(f.path)
		if !ok {
			t.Errorf("spec field %s (%s) has no rule in FieldRules: decide whether it is kept, tightened, judged or refused", f.path, f.typ)
			continue
		}
		covered[r.Field] = true
	}
	seen := map[string]bool{}
	for _, r := range FieldRules {
		switch {
		case seen[r.Field]:
			t.Errorf("%s has two rules", r.Field)
		case !covered[r.Field]:
			t.Errorf("rule for %s names no field of the runtime spec", r.Field)
		case r.Why == "" || r.Rule == "":
			t.Errorf("rule for %s says no reason or rule", r.Field)
		}
		switch r.Disposition {
		case Kept, Tightened, Judged, Refused:
		default:
			t.Errorf("%s: unknown disposition %q", r.Field, r.Disposition)
		}
		seen[r.Field] = true
	}
}

// setField sets the field at path (a table path; a hook kind for "*") in s
// to v, creating what lies on the way: one list element, one map value
// (key "x"). It returns the leaf.
func setField(t *testing.T, s *specs.Spec, path string, v func(reflect.Value)) {
	t.Helper()
	cur := reflect.ValueOf(s).Elem()
	for _, elem := range strings.Split(strings.ReplaceAll(path, "hooks.*", "hooks.prestart"), ".") {
		name, suffix, _ := strings.Cut(elem, "[")
		mapped := strings.HasSuffix(elem, "{}")
		if mapped {
			name = strings.TrimSuffix(name, "{}")
		}
		cur = fieldByJSON(t, deref(cur), name)
		switch {
		case suffix != "":
			if cur.Len() == 0 {
				cur.Set(reflect.Append(cur, reflect.New(cur.Type().Elem()).Elem()))
			}
			cur = cur.Index(cur.Len() - 1)
		case mapped:
			if cur.IsNil() {
				cur.Set(reflect.MakeMap(cur.Type()))
			}
			e := reflect.New(cur.Type().Elem()).Elem()
			if old := cur.MapIndex(reflect.ValueOf("x")); old.IsValid() {
				e.Set(old)
			}
			defer cur.SetMapIndex(reflect.ValueOf("x"), e)
			cur = e
		}
	}
	v(cur)
}

func deref(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	return v
}

func fieldByJSON(t *testing.T, v reflect.Value, name string) reflect.Value {
	t.Helper()
	f, ok := lookupJSON(v, name)
	if !ok {
		t.Fatalf("no field %q in %s", name, v.Type())
	}
	return f
}

// lookupJSON finds the field of struct v with JSON name, in v or in a
// struct it embeds.
func lookupJSON(v reflect.Value, name string) (reflect.Value, bool) {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Anonymous {
			if e, ok := lookupJSON(v.Field(i), name); ok {
				return e, true
			}
			continue
		}
		if strings.Split(f.Tag.Get("json"), ",")[0] == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// nonZero sets v (allocating pointers) to a value that is not its zero,
// or, for a struct, sets its first leaf.
func nonZero(v reflect.Value) {
	v = deref(v)
	switch v.Kind() {
	case reflect.String:
		v.SetString("1")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Slice:
		e := reflect.New(v.Type().Elem()).Elem()
		nonZero(e)
		v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), e))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		nonZero(k)
		nonZero(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		nonZero(v.Field(0))
	case reflect.Interface:
		v.Set(reflect.ValueOf("1"))
	}
}

// fieldBase is a spec every built-in profile accepts, with the context
// some fields need (a hook the test allows, a device node).
func fieldBase(path string) (*specs.Spec, Config) {
	s := criSpec()
	var allowed []string
	switch {
	case strings.HasPrefix(path, "hooks."):
		//lint:ignore SA1019 the field walk names hooks.* by hooks.prestart, which runc still runs
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/usr/libexec/hook"}}}
		allowed = []string{"/usr/libexec/hook"}
	case strings.HasPrefix(path, "linux.devices[]"):
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}}
	case strings.HasPrefix(path, "linux.personality."):
		s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux}
	}
	return s, Config{AllowedHooks: allowed}
}

// TestRefusedFieldsRefused: a spec that sets a field the table refuses is
// refused under every built-in profile, whatever value it holds.
func TestRefusedFieldsRefused(t *testing.T) {
	for _, r := range FieldRules {
		if r.Disposition != Refused {
			continue
		}
		t.Run(r.Field, func(t *testing.T) {
			for _, prof := range profileNames {
				s, extra := fieldBase(r.Field)
				setField(t, s, r.Field, nonZero)
				cfg := cfgFor(t, prof)
				cfg.AllowedHooks = extra.AllowedHooks
				_, _, err := Harden(s, cfg)
				re := refusal(t, err)
				if !strings.HasPrefix(re.Field, strings.Split(r.Field, "[")[0]) {
					t.Errorf("%s: refused naming %q: %v", prof, re.Field, err)
				}
				if re := refusal(t, Validate(s, cfg)); re == nil {
					t.Errorf("%s: Validate accepts it", prof)
				}
			}
		})
	}
}

// TestKeptFieldsKept: a field the table keeps passes every built-in profile
// with its value unchanged.
func TestKeptFieldsKept(t *testing.T) {
	for _, r := range FieldRules {
		if r.Disposition != Kept {
			continue
		}
		t.Run(r.Field, func(t *testing.T) {
			for _, prof := range profileNames {
				s, extra := fieldBase(r.Field)
				var want any
				setField(t, s, r.Field, func(v reflect.Value) { nonZero(v); want = deref(v).Interface() })
				cfg := cfgFor(t, prof)
				cfg.AllowedHooks = extra.AllowedHooks
				out, _, err := Harden(s, cfg)
				if err != nil {
					t.Fatalf("%s: %v", prof, err)
				}
				var got any
				setField(t, out, r.Field, func(v reflect.Value) { got = deref(v).Interface() })
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: %v, want %v", prof, got, want)
				}
			}
		})
	}
}

// TestUnknownFieldsDropped: the spec the shim writes is marshalled from the
// specs-go types, so a field they do not know never reaches runc.
func TestUnknownFieldsDropped(t *testing.T) {
	in := `{"ociVersion": "1.3.0", "futureTop": {"x": 1},
		"process": {"user": {"uid": 1000, "gid": 1000, "futureUser": 1}, "args": ["/app"], "cwd": "/", "futureProcess": true},
		"root": {"path": "rootfs", "futureRoot": "x"},
		"mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "futureMount": ["x"]}],
		"linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "ipc"}, {"type": "network"}],
			"futureLinux": {"hostPath": "/"}, "resources": {"futureResource": 1}}}`
	var s specs.Spec
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	for _, prof := range profileNames {
		out, _, err := Harden(&s, cfgFor(t, prof))
		if err != nil {
			t.Fatalf("%s: %v", prof, err)
		}
		data, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "future") {
			t.Errorf("%s: an unknown field reached the output: %s", prof, data)
		}
	}
}

// TestFieldRulesDocumented: docs/spec-fields.md is the table, generated
// (go test -run TestFieldRulesDocumented -update).
func TestFieldRulesDocumented(t *testing.T) {
	var b strings.Builder
	b.WriteString("# What the engine does with each field of the runtime spec\n\n")
	b.WriteString("Generated from `hardening/fields.go` (`go test ./hardening -run TestFieldRulesDocumented -update`);\n")
	b.WriteString("a test walks the runtime-spec types and fails when a field has no row.\n")
	b.WriteString("kept: passed as is under every profile; tightened: rewritten toward the profile, never loosened;\n")
	b.WriteString("judged: kept within the profile, refused (or tightened) beyond it; refused: a spec that sets it is refused.\n\n")
	b.WriteString("| field | disposition | rule | why |\n|---|---|---|---|\n")
	for _, r := range slices.Clone(FieldRules) {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Field, r.Disposition, r.Rule, strings.ReplaceAll(r.Why, "|", "\\|"))
	}
	goldenfile.Check(t, "../docs/spec-fields.md", []byte(b.String()), *update)
}
