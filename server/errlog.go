package server

import (
	"log/slog"
	"sync"
	"time"
)

// errorLogEvery is how often one kind of error is written to the log at most. An
// overload answers thousands of requests a second with 503; one line each would
// bury every other line and fill the disk (the metrics count every answer).
const errorLogEvery = 10 * time.Second

// errorLog writes ERROR lines, at most one per kind every `every`: the first of a
// kind at once, the others counted, and the count written as one line when the
// time is up (or at flush). Kinds are the message and the values of the first
// attributes given as its key: a small fixed set (a status and a code, say), never
// input.
type errorLog struct {
	logger *slog.Logger
	now    func() time.Time
	every  time.Duration
	mu     sync.Mutex
	kinds  map[string]*logKind
	timer  *time.Timer // writes the counts of what was left out, once every is up
}

type logKind struct {
	msg     string
	attrs   []any     // those that name the kind
	last    time.Time // when a line of this kind was written
	omitted int       // since then
}

func newErrorLog(logger *slog.Logger, now func() time.Time) *errorLog {
	return &errorLog{logger: logger, now: now, every: errorLogEvery, kinds: map[string]*logKind{}}
}

// log writes msg with err and attrs, or counts it as left out. attrs are slog
// key-value pairs; the first four elements (two pairs) name its kind.
func (l *errorLog) log(msg string, err error, attrs ...any) {
	n := min(len(attrs), 4)
	kind := attrs[:n:n] // an append to it copies, never writes into attrs
	key := msg
	for _, a := range kind {
		key += "\x00" + slog.AnyValue(a).String()
	}
	now := l.now()
	l.mu.Lock()
	k := l.kinds[key]
	if k == nil {
		k = &logKind{msg: msg, attrs: kind}
		l.kinds[key] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < l.every {
		k.omitted++
		if l.timer == nil {
			l.timer = time.AfterFunc(l.every, l.flush)
		}
		l.mu.Unlock()
		return
	}
	omitted := k.omitted
	k.last, k.omitted = now, 0
	l.mu.Unlock()
	if omitted > 0 {
		attrs = append(attrs, "omitted_before", omitted)
	}
	l.logger.Error(msg, append(attrs, "err", err)...)
}

// flush writes one line per kind whose lines were left out since its last one.
func (l *errorLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	for _, k := range l.kinds {
		if k.omitted > 0 {
			l.logger.Error(k.msg, append(k.attrs, "omitted_since", k.last, "omitted", k.omitted)...)
			k.omitted = 0
		}
	}
}
