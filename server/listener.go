package server

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"strings"
)

// Listener wraps ln so that the answers net/http gives by itself, to requests it
// cannot even parse (a malformed request line, headers over the size limit, a
// missing Host), have the JSON error shape of every other answer instead of
// net/http's plain text. No handler runs for those, so only the connection sees
// them.
func Listener(ln net.Listener) net.Listener { return jsonErrorListener{ln} }

type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return jsonErrorConn{c}, nil
}

type jsonErrorConn struct{ net.Conn }

// protocolErrorHeaders is what net/http writes after the status line of its own
// error answers, in one write straight to the connection. A handler's answer never
// starts so: net/http writes the headers of those sorted, with a Date.
const protocolErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c jsonErrorConn) Write(p []byte) (int, error) {
	if answer, ok := jsonProtocolError(p); ok {
		_, err := c.Conn.Write(answer)
		return len(p), err
	}
	return c.Conn.Write(p)
}

// CloseWrite lets net/http half-close the connection after an error answer, as it
// does on a *net.TCPConn, so that the client reads the answer before the close.
func (c jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// jsonProtocolError returns p, one of net/http's own error answers
// ("HTTP/1.1 431 Request Header Fields Too Large" + protocolErrorHeaders + text),
// as the same answer with a JSON error body, if p is one.
func jsonProtocolError(p []byte) ([]byte, bool) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 4")) && !bytes.HasPrefix(p, []byte("HTTP/1.1 5")) {
		return nil, false // most writes: no need to look further
	}
	statusLine, text, ok := bytes.Cut(p, []byte(protocolErrorHeaders))
	rest, isHTTP := bytes.CutPrefix(statusLine, []byte("HTTP/1.1 "))
	if !ok || !isHTTP || len(rest) < 4 || rest[3] != ' ' {
		return nil, false
	}
	status, err := strconv.Atoi(string(rest[:3]))
	if err != nil || status < 400 {
		return nil, false
	}
	// The text is "431 Request Header Fields Too Large", or "400 Bad Request: missing
	// required Host header": the part after the colon, if any, says what is wrong.
	msg := string(text)
	if _, detail, found := strings.Cut(msg, ": "); found {
		msg = detail
	}
	body, _ := json.Marshal(errorBody(httpCode(status), "the request could not be read: "+msg))
	code, _, _ := strings.Cut(string(rest), ":") // "400 Bad Request", without the detail
	answer := "HTTP/1.1 " + code + "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
	return []byte(answer), true
}
