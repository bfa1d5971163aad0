package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestLogFormat: --log-format, or $CONSENTD_LOG_FORMAT, chooses the log's format;
// without either, a log that goes elsewhere than a terminal is JSON.
func TestLogFormat(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string
		want string // "json", "text", or "" for a refusal
	}{
		{name: "default off a terminal", want: "json"},
		{name: "json", args: []string{"--log-format", "json"}, want: "json"},
		{name: "text", args: []string{"--log-format", "text"}, want: "text"},
		{name: "from the environment", env: "text", want: "text"},
		{name: "the flag over the environment", args: []string{"--log-format", "json"}, env: "text", want: "json"},
		{name: "unknown", args: []string{"--log-format", "logfmt"}},
		{name: "unknown in the environment", env: "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CONSENTD_LOG_FORMAT", tt.env)
			var stderr bytes.Buffer
			m := NewMain(&stderr, &stderr)
			err := m.ParseFlags(tt.args)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "--log-format") {
					t.Errorf("ParseFlags: %v, want a refusal naming --log-format", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m.logger.Info("consentd serving", "addr", "127.0.0.1:8080")
			mustLogFormat(t, stderr.String(), tt.want)
		})
	}
}

// mustLogFormat checks that line is one line of a log in format.
func mustLogFormat(tb testing.TB, line, format string) {
	tb.Helper()
	var v map[string]any
	isJSON := json.Unmarshal([]byte(line), &v) == nil && v["msg"] == "consentd serving" && v["addr"] == "127.0.0.1:8080"
	isText := strings.HasPrefix(line, "time=") && strings.Contains(line, ` msg="consentd serving" addr=127.0.0.1:8080`)
	if format == "json" && !isJSON || format == "text" && !isText {
		tb.Errorf("log line %q, want it in %s", line, format)
	}
}
