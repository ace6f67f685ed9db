package esl

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// Content types of the frames FreeSWITCH sends to an inbound client.
const (
	ctAuthRequest = "auth/request"
	ctReply       = "command/reply"
	ctAPIResponse = "api/response"
	ctEventJSON   = "text/event-json"
	ctEventPlain  = "text/event-plain"
	ctDisconnect  = "text/disconnect-notice"
)

// maxBody bounds a frame body. mod_event_socket cuts commands at 10 MB; a
// `show channels as json` of 10,000 channels is ~30 MB, so 64 MB leaves room
// while still refusing a corrupt length that would exhaust memory.
const maxBody = 64 << 20

// frame is one message from the switch: a header block, a blank line, and a
// Content-Length body. Only the headers this package acts on are kept.
type frame struct {
	contentType string
	replyText   string // Reply-Text of a command/reply
	jobUUID     string // Job-UUID of a bgapi command/reply
	body        []byte
}

// readFrame reads one frame the way mod_event_socket frames them: "\r" is
// ignored, blank lines before a header block are skipped, and header names
// are matched case-insensitively.
func readFrame(br *bufio.Reader) (*frame, error) {
	f := &frame{}
	length := -1
	started := false
	for {
		line, err := readLine(br)
		if err != nil {
			if started && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) == 0 {
			if !started {
				continue
			}
			break
		}
		started = true
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("%w: header line without colon: %.64q", ErrProtocol, line)
		}
		value = bytes.TrimLeft(value, " ")
		switch {
		case equalFold(name, "Content-Type"):
			f.contentType = string(value)
		case equalFold(name, "Content-Length"):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || n > maxBody {
				return nil, fmt.Errorf("%w: bad Content-Length %.32q", ErrProtocol, value)
			}
			length = n
		case equalFold(name, "Reply-Text"):
			f.replyText = string(value)
		case equalFold(name, "Job-UUID"):
			f.jobUUID = string(value)
		}
	}
	if length > 0 {
		f.body = make([]byte, length)
		if _, err := io.ReadFull(br, f.body); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return f, nil
}

// readLine returns the next line without its "\n" and without any "\r".
// The returned slice is only valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A header longer than the buffer (Reply-Text is capped at 511
		// bytes, so this is rare): gather it.
		buf := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			buf = append(buf, line...)
			if len(buf) > maxBody {
				return nil, fmt.Errorf("%w: header line longer than %d bytes", ErrProtocol, maxBody)
			}
		}
		line = buf
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		line = bytes.ReplaceAll(line, []byte("\r"), nil)
	}
	return line, nil
}

func equalFold(b []byte, s string) bool {
	return len(b) == len(s) && bytes.EqualFold(b, []byte(s))
}

// appendCommand appends one command as mod_event_socket's read_packet
// expects it: the command line, optional header lines, and a blank line.
// Callers have checked that nothing contains a line break.
func appendCommand(dst []byte, line string, headers ...string) []byte {
	dst = append(dst, line...)
	dst = append(dst, '\n')
	for i := 0; i+1 < len(headers); i += 2 {
		dst = append(dst, headers[i]...)
		dst = append(dst, ": "...)
		dst = append(dst, headers[i+1]...)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}
