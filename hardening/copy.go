package hardening

import (
	"maps"
	"reflect"
	"slices"
)

// deepCopy returns a copy of *in that shares no memory with it (strings
// aside, which are immutable), so that the engine never mutates its input
// and the caller may mutate the output freely.
//
// It walks the value with reflection instead of a JSON round trip (10x
// slower on a spec carrying a seccomp filter) or a hand-written copy (which
// silently goes stale when runtime-spec grows a field): every field of
// every type is copied by construction.
func deepCopy[T any](in *T) *T {
	if in == nil {
		return nil
	}
	out := new(T)
	copyValue(reflect.ValueOf(out).Elem(), reflect.ValueOf(in).Elem())
	return out
}

func copyValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		copyValue(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Struct:
		for i := range src.NumField() {
			copyValue(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		// Fast path for the most common slice in a spec.
		if ss, ok := src.Interface().([]string); ok {
			dst.Set(reflect.ValueOf(slices.Clone(ss)))
			return
		}
		n := src.Len()
		s := reflect.MakeSlice(src.Type(), n, n)
		if isFlat(src.Type().Elem()) {
			reflect.Copy(s, src)
		} else {
			for i := range n {
				copyValue(s.Index(i), src.Index(i))
			}
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		if m, ok := src.Interface().(map[string]string); ok {
			dst.Set(reflect.ValueOf(maps.Clone(m)))
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		et := src.Type().Elem()
		for it := src.MapRange(); it.Next(); {
			v := reflect.New(et).Elem()
			copyValue(v, it.Value())
			m.SetMapIndex(it.Key(), v)
		}
		dst.Set(m)
	case reflect.Interface:
		// Windows.CredentialSpec is the one interface{} in a spec.
		if src.IsNil() {
			return
		}
		e := src.Elem()
		v := reflect.New(e.Type()).Elem()
		copyValue(v, e)
		dst.Set(v)
	case reflect.Array:
		for i := range src.Len() {
			copyValue(dst.Index(i), src.Index(i))
		}
	default:
		dst.Set(src)
	}
}

// isFlat reports whether values of t hold no pointers, so that a shallow
// copy is a deep one.
func isFlat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return isFlat(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !isFlat(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}
