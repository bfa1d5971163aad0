package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	consent "github.com/mixvoip/consentd"
)

// The JSON Schema that editors use to complete and check sites.yaml. It must accept
// what consentd accepts and know every key consentd knows, no more.
const schemaFile = "../sites.schema.json"

func TestSchemaAcceptsShippedFiles(t *testing.T) {
	t.Parallel()
	schema := MustSchema(t)
	for _, name := range []string{"../sites.yaml", "testdata/minimal.yaml"} {
		t.Run(name, func(t *testing.T) {
			if err := schema.Validate(MustInstance(t, MustReadFile(t, name))); err != nil {
				t.Errorf("%s against %s: %v", name, schemaFile, err)
			}
		})
	}
}

// TestSchemaRefuses changes one thing in a valid file: the schema must refuse it, as
// consentd does, so that an editor shows the mistake before consentd check.
func TestSchemaRefuses(t *testing.T) {
	t.Parallel()
	schema := MustSchema(t)
	base := MustReadFile(t, "testdata/minimal.yaml")
	tests := []struct{ name, old, new string }{
		{"bool as a word", `pixel: { enabled: true, account: "42" }`, `pixel: { enabled: maybe, account: "42" }`},
		{"text where a list belongs", "    origins: [https://example.com, https://www.example.com]", "    origins: https://example.com"},
		{"number as a word", "    languages: [en]", "    languages: [en]\n    retention_days: lots"},
		{"unknown key", "    leaves_eea: false", "    leaves_eea: false\n    colour: red"},
		{"unknown top-level key", "dpo:", "dpos:\n  email: x@example.com\ndpo:"},
		{"misspelt site key", "    languages: [en]", "    langauges: [en]"},
		{"missing policy version", `version: "1"`, `versions: "1"`},
		{"unknown language", "    languages: [en]", "    languages: [en, xx]"},
		{"unknown data shared", "data_shared: [ip_address]", "data_shared: [email]"},
		{"leaves EEA without safeguard", "    leaves_eea: false", "    leaves_eea: true"},
		{"tag with src and inline", "      - src: https://pixel.example/tag.js?id={account}", "      - src: https://pixel.example/tag.js?id={account}\n        inline: x()"},
		{"origin with path", "https://www.example.com]", "https://www.example.com/]"},
		{"site key not a domain", "  example.com:", "  Example:"},
		{"partner id in capitals", "partners:\n  pixel:", "partners:\n  Pixel:"},
		{"jurisdiction not a country code", "  jurisdiction: LU", "  jurisdiction: Luxembourg"},
		{"theme colour not hex", "    languages: [en]", "    languages: [en]\n    theme:\n      accent: red"},
		{"unknown theme colour", "    languages: [en]", "    languages: [en]\n    theme:\n      primary: \"#000\""},
		{"unknown text key", "    languages: [en]", "    languages: [en]\n    texts:\n      en:\n        titel: Hello"},
		{"cookie lifetime in words only", "{ name: _px, lifetime: 90 days }", "{ name: _px, lifetime: three months }"},
		{"partner host as a URL", "      - { name: _px, lifetime: 90 days }", "      - { name: _px, lifetime: 90 days }\n    hosts: [\"https://px.example\"]"},
		{"unknown technical key", "    languages: [en]", "    languages: [en]\n    technical:\n      scripts: [x.js]"},
		{"consent over 13 months", "    languages: [en]", "    languages: [en]\n    cookie: { consent_days: 400 }"},
		{"account with a quote", `account: "42"`, `account: "4'2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old) {
				t.Fatalf("fixture has no %q", tt.old)
			}
			changed := strings.Replace(base, tt.old, tt.new, 1)
			if schema.Validate(MustInstance(t, changed)) == nil {
				t.Errorf("the schema accepts it")
			}
			if _, err := Parse("sites.yaml", []byte(changed)); err == nil {
				t.Errorf("consentd accepts it: the schema must not be stricter than consentd")
			}
		})
	}
}

// TestSchemaMatchesGoTypes walks the Go types sites.yaml decodes into beside the
// schema: every key of one must be at the same place in the other, with the same
// kind of value, so that neither can drift from the other.
func TestSchemaMatchesGoTypes(t *testing.T) {
	t.Parallel()
	doc := MustSchemaDocument(t)
	compareSchema(t, doc, doc, reflect.TypeFor[file](), "sites.yaml")
}

// TestSchemaMatchesDomain: the lists and patterns that consentd checks against are
// the ones the schema offers.
func TestSchemaMatchesDomain(t *testing.T) {
	t.Parallel()
	doc := MustSchemaDocument(t)
	site := "/properties/sites/additionalProperties"
	keys := func(at string) []string {
		return slices.Sorted(maps.Keys(MustAt(t, doc, at).(map[string]any)))
	}
	enum := func(at string) []string {
		var out []string
		for _, v := range MustAt(t, doc, at).([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	lists := []struct {
		at        string
		got, want []string
	}{
		{"languages", enum(site + "/properties/languages/items/enum"), consent.Languages},
		{"languages of a text", keys("/$defs/localized/properties"), consent.Languages},
		{"languages of texts", enum(site + "/properties/texts/propertyNames/enum"), consent.Languages},
		{"text keys", keys("/$defs/texts/properties"), slices.Sorted(slices.Values(consent.TextKeys))},
		{"theme colours", keys(site + "/properties/theme/properties"), slices.Sorted(slices.Values(consent.ThemeNames))},
		{"data_shared", enum("/$defs/partner/properties/data_shared/items/enum"), dataShared},
	}
	for _, l := range lists {
		if !slices.Equal(l.got, l.want) {
			t.Errorf("%s: the schema has %v, consentd %v", l.at, l.got, l.want)
		}
	}
	for _, name := range consent.ThemeNames {
		theme := site + "/properties/theme/properties/" + name
		if got := MustAt(t, doc, theme+"/default"); got != consent.DefaultTheme[name] {
			t.Errorf("%s/default = %v, want %s", theme, got, consent.DefaultTheme[name])
		}
		if got := MustAt(t, doc, theme+"/pattern"); got != hexColour.String() {
			t.Errorf("%s/pattern = %v, want %s", theme, got, hexColour)
		}
	}
	patterns := []struct{ at, want string }{
		{"/$defs/id/pattern", idPattern.String()},
		{"/properties/sites/propertyNames/pattern", siteKeyPattern.String()},
		{"/$defs/controller/properties/jurisdiction/pattern", jurisdictionPattern.String()},
		{site + "/properties/cookie/properties/name/pattern", cookiePattern.String()},
	}
	for _, p := range patterns {
		if got := MustAt(t, doc, p.at); got != p.want {
			t.Errorf("%s = %v, want %s", p.at, got, p.want)
		}
	}
}

// compareSchema reports where the Go type typ and the schema s of the same place (at)
// disagree on keys or on the kind of value.
func compareSchema(t *testing.T, doc, s map[string]any, typ reflect.Type, at string) {
	t.Helper()
	s = deref(t, doc, s)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	types := fmt.Sprint(s["type"])
	switch typ.Kind() {
	case reflect.Struct:
		props, _ := s["properties"].(map[string]any)
		if !strings.Contains(types, "object") || s["additionalProperties"] != false || props == nil {
			t.Errorf("%s: the schema must be an object with properties and additionalProperties: false, as %s is", at, typ)
			return
		}
		keys := map[string]bool{}
		for i := range typ.NumField() {
			key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			if key == "-" { // not in the file
				continue
			}
			keys[key] = true
			sub, ok := props[key].(map[string]any)
			if !ok {
				t.Errorf("%s.%s: in the Go types, not in the schema", at, key)
				continue
			}
			compareSchema(t, doc, sub, typ.Field(i).Type, at+"."+key)
		}
		for key := range props {
			if !keys[key] {
				t.Errorf("%s.%s: in the schema, not in the Go types", at, key)
			}
		}
	case reflect.Map:
		if !strings.Contains(types, "object") {
			t.Errorf("%s: the schema's type is %s, want object", at, types)
			return
		}
		// A map's keys are the user's (ids, languages): each value the schema allows,
		// named or not, must decode into the Go map's values.
		var values []map[string]any
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			values = append(values, ap)
		}
		props, _ := s["properties"].(map[string]any)
		for _, key := range slices.Sorted(maps.Keys(props)) {
			values = append(values, props[key].(map[string]any))
		}
		if len(values) == 0 {
			t.Errorf("%s: the schema says nothing of the values", at)
		}
		for _, v := range values {
			compareSchema(t, doc, v, typ.Elem(), at+".*")
		}
	case reflect.Slice:
		items, ok := s["items"].(map[string]any)
		if !strings.Contains(types, "array") || !ok {
			t.Errorf("%s: the schema must be an array with items, as %s is", at, typ)
			return
		}
		compareSchema(t, doc, items, typ.Elem(), at+"[]")
	default:
		want := map[reflect.Kind]string{reflect.Bool: "boolean", reflect.Int: "integer", reflect.String: "string"}[typ.Kind()]
		if want == "" || !slices.Contains(strings.Fields(strings.Trim(types, "[]")), want) {
			t.Errorf("%s: the schema's type is %s, want %s for a Go %s", at, types, want, typ)
		}
	}
}

// deref returns the schema a "$ref": "#/$defs/..." points to.
func deref(tb testing.TB, doc, s map[string]any) map[string]any {
	tb.Helper()
	ref, ok := s["$ref"].(string)
	if !ok {
		return s
	}
	target, ok := MustAt(tb, doc, strings.TrimPrefix(ref, "#")).(map[string]any)
	if !ok {
		tb.Fatalf("$ref %s is not a schema", ref)
	}
	return target
}

// MustAt returns the value at ptr (a JSON pointer without escapes) in the schema
// document, following $ref on the way.
func MustAt(tb testing.TB, doc map[string]any, ptr string) any {
	tb.Helper()
	var v any = doc
	for _, key := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := v.(map[string]any)
		if !ok {
			tb.Fatalf("%s: %q is below a value that is not an object", ptr, key)
		}
		if _, ok := m[key]; !ok {
			m = deref(tb, doc, m)
		}
		if v, ok = m[key]; !ok {
			tb.Fatalf("%s: no %q", ptr, key)
		}
	}
	return v
}

// MustSchema compiles sites.schema.json, checking it against the draft 2020-12
// meta-schema on the way.
func MustSchema(tb testing.TB) *jsonschema.Schema {
	tb.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(MustReadFile(tb, schemaFile))))
	if err != nil {
		tb.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sites.schema.json", doc); err != nil {
		tb.Fatal(err)
	}
	schema, err := c.Compile("sites.schema.json")
	if err != nil {
		tb.Fatal(err)
	}
	return schema
}

// MustSchemaDocument returns sites.schema.json as plain JSON values.
func MustSchemaDocument(tb testing.TB) map[string]any {
	tb.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(MustReadFile(tb, schemaFile)), &doc); err != nil {
		tb.Fatal(err)
	}
	return doc
}

// MustInstance turns a YAML document into the JSON values a schema validates, as an
// editor's YAML language server sees them.
func MustInstance(tb testing.TB, text string) any {
	tb.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		tb.Fatal(err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	return inst
}

func MustReadFile(tb testing.TB, name string) string {
	tb.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}
