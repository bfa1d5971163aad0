package banner

import (
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mixvoip/consentd"
)

// typescriptNames are the TypeScript interfaces of src/settings.ts that document the Go
// types the bundle carries.
var typescriptNames = map[reflect.Type]string{
	reflect.TypeFor[settings]():         "Settings",
	reflect.TypeFor[language]():         "Lang",
	reflect.TypeFor[disclosure]():       "Disclosure",
	reflect.TypeFor[partnerSettings]():  "Partner",
	reflect.TypeFor[categorySettings](): "Category",
	reflect.TypeFor[tagSettings]():      "Tag",
	reflect.TypeFor[cookieSettings]():   "Cookie",
}

// TestTypeScriptSettings: the TypeScript interfaces of src/settings.ts, which the
// banner's code is type-checked against, have exactly the members of the Go types
// the bundle is built from: the same keys, optional where Go omits empty values,
// of the same types. A field added on one side only fails here.
func TestTypeScriptSettings(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("src/settings.ts")
	if err != nil {
		t.Fatal(err)
	}
	declared := typescriptInterfaces(string(src))
	for goType, name := range typescriptNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ts, ok := declared[name]
			if !ok {
				t.Fatalf("src/settings.ts declares no interface %s", name)
			}
			want := map[string]string{}
			for i := range goType.NumField() {
				f := goType.Field(i)
				key, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				optional := opts == "omitempty"
				member := key
				if optional {
					member += "?"
				}
				want[member] = typescriptType(t, f.Type, optional)
			}
			for _, m := range slices.Sorted(maps.Keys(want)) {
				if got, ok := ts[m]; !ok {
					t.Errorf("member %s: missing in TypeScript (Go: %s)", m, want[m])
				} else if got != want[m] {
					t.Errorf("member %s: TypeScript says %s, Go carries %s", m, got, want[m])
				}
			}
			for _, m := range slices.Sorted(maps.Keys(ts)) {
				if _, ok := want[m]; !ok {
					t.Errorf("member %s: in TypeScript, not in the Go type %s", m, goType.Name())
				}
			}
		})
	}
}

// TestTypeScriptTextKeys: the TypeScript union TextKey, which every t('...') of the
// banner is checked against, is consent.TextKeys.
func TestTypeScriptTextKeys(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("src/settings.ts")
	if err != nil {
		t.Fatal(err)
	}
	union := regexp.MustCompile(`(?s)export type TextKey =(.*?);`).FindSubmatch(src)
	if union == nil {
		t.Fatal("src/settings.ts has no type TextKey")
	}
	var keys []string
	for _, m := range regexp.MustCompile(`'([^']+)'`).FindAllSubmatch(union[1], -1) {
		keys = append(keys, string(m[1]))
	}
	if !slices.Equal(slices.Sorted(slices.Values(keys)), slices.Sorted(slices.Values(consent.TextKeys))) {
		t.Errorf("TextKey is %v, consent.TextKeys %v", keys, consent.TextKeys)
	}
}

// typescriptInterfaces returns the members of each interface in src, by name: the
// member as written ("f?") and its type.
func typescriptInterfaces(src string) map[string]map[string]string {
	out := map[string]map[string]string{}
	member := regexp.MustCompile(`(?m)^\s+(\w+\??):\s*([^;]+);`)
	for _, m := range regexp.MustCompile(`(?s)export interface (\w+) \{\n(.*?)\n\}`).FindAllStringSubmatch(src, -1) {
		members := map[string]string{}
		for _, mm := range member.FindAllStringSubmatch(m[2], -1) {
			members[mm[1]] = strings.TrimSpace(mm[2])
		}
		out[m[1]] = members
	}
	return out
}

// typescriptType returns how src/settings.ts writes Go type t: a bool that is only ever
// sent when true is the literal type true.
func typescriptType(tb testing.TB, t reflect.Type, optional bool) string {
	tb.Helper()
	if name, ok := typescriptNames[t]; ok {
		return name
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		if optional {
			return "true"
		}
		return "boolean"
	case reflect.Float64, reflect.Int:
		return "number"
	case reflect.Pointer:
		return typescriptType(tb, t.Elem(), false)
	case reflect.Slice:
		return typescriptType(tb, t.Elem(), false) + "[]"
	case reflect.Array:
		elems := make([]string, t.Len())
		for i := range elems {
			elems[i] = typescriptType(tb, t.Elem(), false)
		}
		return "[" + strings.Join(elems, ", ") + "]"
	case reflect.Map:
		return "Texts" // the UI texts, by TextKey
	}
	tb.Fatalf("no TypeScript type for Go type %s", t)
	return ""
}
