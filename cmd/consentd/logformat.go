package main

import (
	"fmt"
	"io"
	"log/slog"
)

// newLogger returns the logger of consentd serve on w in format: "json", "text", or
// "" for text on a terminal, where a person reads it, and JSON elsewhere, where a
// log collector does.
func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--log-format: %q, want json or text", format)
}
