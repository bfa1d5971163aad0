package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	consent "github.com/mixvoip/consentd"
)

// MaxConsentBody is the largest consent request accepted. A real one is under 1 KiB.
const MaxConsentBody = 8 << 10

// decodeConsentRequest parses a body strictly: one JSON object of valid UTF-8, known
// fields only, each once and named exactly (encoding/json would match "GPC" or
// "ſite" to a field regardless of case, and keep the last of two members of one
// name: a proof must not depend on which of two answers counted), every field of
// the right type. It checks the shape, not the meaning (consent.Decision.Validate).
func decodeConsentRequest(body []byte) (*consent.Decision, error) {
	if !utf8.Valid(body) {
		return nil, consent.Errorf(consent.EInvalid, "body is not valid UTF-8")
	}
	var req consent.Decision
	if err := json.Unmarshal(body, &req, json.RejectUnknownMembers(true)); err != nil {
		return nil, consent.Errorf(consent.EInvalid, "body is not a valid consent request: %s", jsonProblem(body, err))
	}
	if bytes.TrimLeft(body, " \t\r\n")[0] != '{' { // null, which decodes as {}
		return nil, consent.Errorf(consent.EInvalid, "body is not a valid consent request: expected a JSON object")
	}
	return &req, nil
}

// jsonProblem says what is wrong with body, naming the member at fault by its
// path (choices.categories.advertising), without echoing Go type names.
func jsonProblem(body []byte, err error) string {
	var syntax *jsontext.SyntacticError
	var semantic *json.SemanticError
	switch {
	case errors.As(err, &syntax) && errors.Is(syntax.Err, jsontext.ErrDuplicateName):
		return fmt.Sprintf("member %q is given twice", memberPath(syntax.JSONPointer))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "malformed or empty JSON"
	case errors.As(err, &syntax) && oneValueFirst(body):
		return "body must hold exactly one JSON object"
	case errors.As(err, &semantic) && errors.Is(semantic.Err, json.ErrUnknownName):
		return fmt.Sprintf("unknown field %q (names are case-sensitive)", memberPath(semantic.JSONPointer))
	case errors.As(err, &semantic) && semantic.JSONPointer != "":
		return fmt.Sprintf("field %q has the wrong type", memberPath(semantic.JSONPointer))
	case errors.As(err, &semantic):
		return "expected a JSON object"
	}
	return "malformed JSON"
}

// oneValueFirst reports whether body starts with a valid JSON value.
func oneValueFirst(body []byte) bool {
	return jsontext.NewDecoder(bytes.NewReader(body)).SkipValue() == nil
}

// memberPath writes a JSON pointer as the docs name members: /choices/categories/a
// is choices.categories.a.
func memberPath(p jsontext.Pointer) string {
	return strings.Join(slices.Collect(p.Tokens()), ".")
}
