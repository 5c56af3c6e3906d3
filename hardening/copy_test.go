package hardening

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fillAll sets every field reachable from v to a non-zero value (pointers
// allocated, slices and maps with one element), to depth 12.
func fillAll(v reflect.Value, depth int) {
	if depth > 12 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(v.Elem(), depth+1)
	case reflect.Struct:
		for i := range v.NumField() {
			fillAll(v.Field(i), depth+1)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillAll(v.Index(0), depth+1)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fillAll(k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fillAll(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"k": []any{"v"}}))
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	}
}

// mutateAll changes every value reachable from v in place (through
// pointers, slice elements and map entries).
func mutateAll(v reflect.Value, depth int) {
	if depth > 12 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			mutateAll(v.Elem(), depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			mutateAll(v.Field(i), depth+1)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			mutateAll(v.Index(i), depth+1)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			if e.Kind() == reflect.Interface && !e.IsNil() {
				e = reflect.ValueOf(e.Interface())
			}
			switch e.Kind() {
			case reflect.String:
				v.SetMapIndex(k, reflect.ValueOf("mutated").Convert(v.Type().Elem()))
			default:
				mutateAll(e, depth+1)
			}
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(v.String() + "-mutated")
		}
	case reflect.Bool:
		if v.CanSet() {
			v.SetBool(!v.Bool())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.CanSet() {
			v.SetInt(v.Int() + 1)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.CanSet() {
			v.SetUint(v.Uint() + 1)
		}
	}
}

func TestDeepCopy(t *testing.T) {
	var in specs.Spec
	fillAll(reflect.ValueOf(&in).Elem(), 0)
	before, err := json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	out := deepCopy(&in)
	if !reflect.DeepEqual(&in, out) {
		t.Fatal("copy differs from the original")
	}
	mutateAll(reflect.ValueOf(out).Elem(), 0)
	after, err := json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatalf("mutating the copy changed the original:\n%s\n%s", before, after)
	}
	if deepCopy[specs.Spec](nil) != nil {
		t.Fatal("nil not copied as nil")
	}
}
