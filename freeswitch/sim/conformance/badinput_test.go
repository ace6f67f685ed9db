package conformance

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// serverStillWorks opens a fresh connection and checks that the server
// answers (the simulator did not panic or wedge).
func serverStillWorks(t *testing.T, tg *Target) {
	t.Helper()
	c := tg.Login()
	if !statusRE.MatchString(c.API("status")) {
		t.Errorf("after bad input, api status on a new connection has a bad shape")
	}
	uid := newUUID()
	okUUID(t, "originate after bad input", c.API("originate {origination_uuid="+uid+"}null/1234 &park"))
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
}

// survivesOrClosesCleanly accepts either a usable connection or a clean close
// after whole frames. Used where the captures say nothing.
func survivesOrClosesCleanly(t *testing.T, tg *Target, c *Conn, what string) {
	t.Helper()
	if err := c.TrySend("api uuid_exists " + newUUID() + "\n\n"); err != nil {
		return // the server closed the socket; checked below
	}
	f, err := c.WaitFrame(tg.Wait, func(f *Frame) bool { return f.ContentType() == "api/response" })
	if err == nil {
		if string(f.Body) != "false" {
			t.Errorf("%s: connection survived but answers %q to uuid_exists", what, f.Body)
		}
		return
	}
	if rerr := c.ReadErr(); rerr != nil && !errors.Is(rerr, io.EOF) && !strings.Contains(rerr.Error(), "connection reset") {
		t.Errorf("%s: the connection neither survived nor closed cleanly: %v", what, rerr)
	}
}

// Bad and hostile input. None of this is captured; the expectations are that
// the server answers as mod_event_socket.c would where the source is clear,
// and otherwise survives or closes the connection cleanly; the server must
// stay up and accept new connections.
func TestBadInput(t *testing.T) {
	tg := newTarget(t)

	t.Run("oversized command line without newline, then vanish", func(t *testing.T) {
		c := tg.With(t).Login()
		big := strings.Repeat("x", 1<<20)
		_ = c.TrySend(big) // the server may stop reading; that is fine
		c.Close()
		serverStillWorks(t, tg.With(t))
	})
	t.Run("oversized command line terminated", func(t *testing.T) {
		c := tg.With(t).Login()
		// mod_event_socket.c read_packet accepts up to 10 MB per command, so
		// FreeSWITCH would answer "-ERR command not found"; a server may also
		// refuse and close. Either is accepted.
		start := len(c.Frames())
		if err := c.TrySend(strings.Repeat("x", 1<<20) + "\n\n"); err == nil {
			f, err := c.WaitFrame(tg.Wait, func(f *Frame) bool { return f.IsReply() && f.Index >= start })
			if err == nil && f.ReplyText() != "-ERR command not found" {
				t.Errorf("1 MB unknown command: got %s", f)
			}
			t.Logf("1 MB command: reply %v, err %v", f, err)
		}
		survivesOrClosesCleanly(t, tg.With(t), c, "1 MB command")
		serverStillWorks(t, tg.With(t))
	})
	t.Run("sendmsg without uuid on an inbound connection", func(t *testing.T) {
		c := tg.With(t).Login()
		// mod_event_socket.c parse_command: no uuid and no session ->
		// "-ERR invalid session id [%s]" with an empty uuid.
		f := c.Cmd("sendmsg", "call-command: execute", "execute-app-name: answer")
		if want := "-ERR invalid session id []"; f.ReplyText() != want {
			t.Errorf("sendmsg without uuid: want %q (from source), got %s", want, f)
		}
		survivesOrClosesCleanly(t, tg.With(t), c, "sendmsg without uuid")
	})
	t.Run("sendmsg to an unknown uuid", func(t *testing.T) {
		c := tg.With(t).Login()
		u := newUUID()
		f := c.Cmd("sendmsg "+u, "call-command: hangup", "hangup-cause: NORMAL_CLEARING")
		if want := "-ERR invalid session id [" + u + "]"; f.ReplyText() != want {
			t.Errorf("sendmsg unknown uuid: want %q (from source), got %s", want, f)
		}
		survivesOrClosesCleanly(t, tg.With(t), c, "sendmsg unknown uuid")
	})
	t.Run("sendmsg with garbage headers", func(t *testing.T) {
		c := tg.With(t).Login()
		start := len(c.Frames())
		c.Send("sendmsg " + newUUID() + "\nthis line has no colon\n: empty name\ncall-command\n\n")
		if _, err := c.WaitFrame(tg.Wait, func(f *Frame) bool { return f.IsReply() && f.Index >= start }); err != nil && !errors.Is(c.ReadErr(), io.EOF) {
			t.Errorf("garbage sendmsg: neither a reply nor a clean close: %v", err)
		}
		survivesOrClosesCleanly(t, tg.With(t), c, "garbage sendmsg")
	})
	t.Run("client vanishes mid-command", func(t *testing.T) {
		for _, partial := range []string{
			"api originate " + carrier(numAnswer),                                       // no terminator at all
			"api status\n",                                                              // half a terminator
			"sendmsg " + newUUID() + "\ncall-command: exe",                              // inside a header
			"sendmsg " + newUUID() + "\ncontent-length: 100\n\nonly a few bytes",        // short body
			"api originate {originate_timeout=2}" + carrier(numNoAnswer) + " &park\n\n", // gone while the api blocks
			"bgapi originate " + carrier(numBye) + " &park\n\n",                         // gone before BACKGROUND_JOB
			"\x00\x01\x02\xff\xfe binary garbage\n\n",                                   // binary garbage
		} {
			c := tg.With(t).Login()
			_ = c.TrySend(partial)
			c.Close()
		}
		tg.SimSleep(3 * time.Second)
		serverStillWorks(t, tg.With(t))
	})
	t.Run("vanish before auth", func(t *testing.T) {
		c := tg.With(t).Dial()
		_ = c.TrySend("auth Clue")
		c.Close()
		serverStillWorks(t, tg.With(t))
	})
}
