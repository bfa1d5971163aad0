package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLogFormatOnATerminal: by default, a log that a person reads on a terminal is
// text.
func TestLogFormatOnATerminal(t *testing.T) {
	t.Setenv("CONSENTD_LOG_FORMAT", "")
	// A pseudo-terminal: what the log writes to tty, ptmx reads.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to log to: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()

	m := NewMain(io.Discard, tty)
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	m.logger.Info("consentd serving", "addr", "127.0.0.1:8080")
	buf := make([]byte, 4096)
	read, err := ptmx.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	// The terminal ends the line with \r\n.
	mustLogFormat(t, strings.TrimRight(string(buf[:read]), "\r\n"), "text")
}
