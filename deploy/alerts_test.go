package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// MustPromtool returns the path of promtool, which checks Prometheus rules and
// queries: it comes with Prometheus (Debian's package prometheus). Without it the
// test fails, unless CONSENTD_SKIP_DEPLOY=1 says to skip what deploy/ needs.
func MustPromtool(tb testing.TB) string {
	tb.Helper()
	if os.Getenv("CONSENTD_SKIP_DEPLOY") == "1" {
		tb.Skip("CONSENTD_SKIP_DEPLOY=1: the Prometheus rules and the Grafana dashboard's queries are not checked")
	}
	path, err := exec.LookPath("promtool")
	if err != nil {
		tb.Fatal("promtool, which checks deploy/alerts.yaml and the dashboard's queries, is not installed: " +
			"apt-get install prometheus (Debian; or a Prometheus release's promtool on the PATH), or set CONSENTD_SKIP_DEPLOY=1 to skip")
	}
	return path
}

// MustRun runs promtool with args and fails tb with its output if it fails.
func MustRun(tb testing.TB, promtool string, args ...string) {
	tb.Helper()
	if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
		tb.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAlertRules: alerts.yaml is valid, and alerts_test.yaml passes.
func TestAlertRules(t *testing.T) {
	promtool := MustPromtool(t)
	MustRun(t, promtool, "check", "rules", "alerts.yaml")
	MustRun(t, promtool, "test", "rules", "alerts_test.yaml")
}

// TestAlertsAreTested: every alert says how bad it is and what to do, and
// alerts_test.yaml shows it firing and, on other series, quiet.
func TestAlertsAreTested(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	MustYAML(t, "alerts.yaml", &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				AlertName string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		}
	}
	MustYAML(t, "alerts_test.yaml", &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tt := range tests.Tests {
		for _, a := range tt.AlertRuleTest {
			fires[a.AlertName] = fires[a.AlertName] || len(a.ExpAlerts) > 0
			quiet[a.AlertName] = quiet[a.AlertName] || len(a.ExpAlerts) == 0
		}
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts++
			switch {
			case r.Labels["severity"] != "critical" && r.Labels["severity"] != "warning":
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, r.Labels["severity"])
			case r.Annotations["summary"] == "" || r.Annotations["description"] == "":
				t.Errorf("%s: no summary or description", r.Alert)
			case !fires[r.Alert] || !quiet[r.Alert]:
				t.Errorf("%s: alerts_test.yaml shows it firing %t, quiet %t; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
	if alerts < 9 {
		t.Errorf("alerts.yaml has %d alerts, want at least 9", alerts)
	}
}

func MustYAML(tb testing.TB, path string, v any) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

// dashboard is what TestDashboard reads of grafana-dashboard.json.
type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Type, Name string
			Query      any
		}
	}
	Panels []struct {
		ID         int
		Type       string
		Title      string
		Datasource *struct{ UID string }
		GridPos    struct{ X, Y, W, H int }
		Targets    []struct {
			RefID      string `json:"refId"`
			Expr       string
			Datasource *struct{ UID string }
		}
	}
}

// dashboardVariables are the Grafana variables the queries may use, each with a
// value that makes them PromQL.
var dashboardVariables = strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")

// TestDashboard: the Grafana dashboard imports into any Grafana with a Prometheus
// data source (chosen in its variable), its panels have a place each, and every
// query is PromQL that Prometheus accepts.
func TestDashboard(t *testing.T) {
	promtool := MustPromtool(t)
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.SchemaVersion != 39 {
		t.Errorf("schemaVersion %d, want 39 (Grafana 10.4 and later)", d.SchemaVersion)
	}
	var datasource bool
	for _, v := range d.Templating.List {
		datasource = datasource || v.Type == "datasource" && v.Name == "datasource" && v.Query == "prometheus"
	}
	if !datasource {
		t.Errorf("no variable datasource of type datasource for prometheus: %+v", d.Templating.List)
	}
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	ids, titles := map[int]bool{}, map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		switch {
		case ids[p.ID] || titles[p.Title]:
			t.Errorf("panel %d %q: its id or title is another panel's", p.ID, p.Title)
		case p.Datasource == nil || p.Datasource.UID != "${datasource}":
			t.Errorf("panel %q: data source %+v, want ${datasource}", p.Title, p.Datasource)
		case p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24:
			t.Errorf("panel %q: gridPos %+v is off the 24 columns", p.Title, p.GridPos)
		case len(p.Targets) == 0:
			t.Errorf("panel %q: no query", p.Title)
		}
		ids[p.ID], titles[p.Title] = true, true
		for _, q := range p.Targets {
			expr := dashboardVariables.Replace(q.Expr)
			if q.Datasource == nil || q.Datasource.UID != "${datasource}" || strings.Contains(expr, "$") {
				t.Errorf("panel %q, query %s: data source %+v, variables besides $__rate_interval and $instance in %s", p.Title, q.RefID, q.Datasource, q.Expr)
			}
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel_%d_%s", p.ID, q.RefID), Expr: expr})
		}
	}
	// Each query as a recording rule, which promtool parses as Prometheus would.
	// JSON is YAML.
	file := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	queries, err := json.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, queries, 0o644); err != nil {
		t.Fatal(err)
	}
	MustRun(t, promtool, "check", "rules", file)
	if len(rules) < 20 {
		t.Errorf("the dashboard has %d queries, want at least 20", len(rules))
	}
}
