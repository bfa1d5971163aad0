package consent

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. The HTTP layer maps each one to a status in one place.
const (
	ENotFound     = "not_found"
	EInvalid      = "invalid"
	EForbidden    = "forbidden"
	EUnauthorized = "unauthorized"
	ETooLarge     = "too_large"
	EUnsupported  = "unsupported_media_type"
	EUnavailable  = "unavailable"
	ERateLimited  = "rate_limited"
	EInternal     = "internal"
)

// Error is a domain error with a code and a message safe to show to a client.
type Error struct {
	Code    string
	Message string
	// RetryAfter, when set, is how long a client should wait before it tries again
	// (a rate limit, a store short of disk space).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrUnavailable is returned (wrapped) by a Store that cannot take a write right now.
var ErrUnavailable = &Error{Code: EUnavailable, Message: "the consent store is busy, try again"}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for any
// other error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the client-safe message of err; internal errors never leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
