package sim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
)

const (
	maxQueueLen   = 100000   // MAX_QUEUE_LEN in mod_event_socket
	maxMissed     = 500      // MAX_MISSED: lost events before the listener is killed
	maxPacket     = 10485760 // read_packet's max_len: a longer command is cut there
	disconnectMsg = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
)

// eventNames are the event types switch_name_event knows.
var eventNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE CHANNEL_CALLSTATE
	CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD
	CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_OUTGOING
	CHANNEL_PARK CHANNEL_UNPARK CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID API LOG INBOUND_CHAN
	OUTBOUND_CHAN STARTUP SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK SESSION_CRASH MODULE_LOAD MODULE_UNLOAD DTMF
	MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE MESSAGE_WAITING MESSAGE_QUERY ROSTER CODEC
	BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE PRIVATE_COMMAND HEARTBEAT TRAP ADD_SCHEDULE DEL_SCHEDULE
	EXE_SCHEDULE RE_SCHEDULE RELOADXML NOTIFY PHONE_FEATURE PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE
	REQUEST_PARAMS CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT CLIENT_DISCONNECTED SERVER_DISCONNECTED
	SEND_INFO RECV_INFO RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START RECORD_STOP
	PLAYBACK_START PLAYBACK_STOP CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START MEDIA_BUG_STOP
	CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT CALL_DETAIL DEVICE_STATE TEXT
	SHUTDOWN_REQUESTED ALL`) {
		eventNames[n] = true
	}
}

// myeventsList is what `myevents` subscribes to (mod_event_socket).
var myeventsList = strings.Fields(`CHANNEL_ANSWER CHANNEL_APPLICATION CHANNEL_BRIDGE CHANNEL_CREATE CHANNEL_DATA
	CHANNEL_DESTROY CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE
	CHANNEL_ORIGINATE CHANNEL_UUID CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA
	CHANNEL_STATE CHANNEL_UNBRIDGE CHANNEL_UNPARK DETECTED_SPEECH DTMF NOTALK TALK`)

// command is one parsed ESL command: its first line and header lines.
type command struct {
	line    string
	headers []event.Header
	body    string
}

func (c *command) header(name string) (string, bool) {
	for _, hd := range c.headers {
		if strings.EqualFold(hd.Name, name) {
			return hd.Value, true
		}
	}
	return "", false
}

// filter is one `filter <header> <value>` entry.
type filter struct {
	header, value string
	re            *regexp.Regexp
}

// eslConn is one event-socket connection (mod_event_socket's listener).
type eslConn struct {
	s        *Sim
	conn     net.Conn
	bw       *bufio.Writer
	outbound bool

	mu          sync.Mutex // guards everything below
	authed      bool
	eventsOn    bool
	all         bool
	names       map[string]bool
	custom      map[string]bool
	format      event.Format
	filters     []filter
	myevents    bool
	session     *Channel
	sessionUUID string
	sessionDown bool
	asyncMode   bool
	full        bool
	linger      bool
	lingerSecs  int
	connected   chan struct{} // outbound mode: closed when the client sent connect
	queue       []*outEvent
	lost        int
	killed      bool

	wake   chan struct{}
	down   chan struct{} // the controlled session is gone
	kill   chan struct{}
	closed chan struct{}
}

func (s *Sim) acceptLoop() {
	for {
		nc, err := s.eslLn.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept failed", "err", err)
			continue
		}
		c := s.newConn(nc, false)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); c.serve() }()
	}
}

func (s *Sim) newConn(nc net.Conn, outbound bool) *eslConn {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &eslConn{
		s: s, conn: nc, bw: bufio.NewWriterSize(nc, 64<<10), outbound: outbound,
		names: map[string]bool{}, custom: map[string]bool{}, format: event.Plain,
		wake: make(chan struct{}, 1), down: make(chan struct{}, 1), kill: make(chan struct{}),
		closed: make(chan struct{}), connected: make(chan struct{}),
	}
	s.connsMu.Lock()
	s.conns[c] = struct{}{}
	s.connsMu.Unlock()
	s.counts.eslConns.Add(1)
	return c
}

// dropConnections closes every event-socket connection (fault injection and
// shutdown).
func (s *Sim) dropConnections() {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	for c := range s.conns {
		c.terminate()
	}
}

// terminate makes the connection's loop end without a goodbye.
func (c *eslConn) terminate() {
	c.mu.Lock()
	if !c.killed {
		c.killed = true
		close(c.kill)
	}
	c.mu.Unlock()
	c.conn.Close()
}

// accepts is the cheap event-type check of event_handler.
func (c *eslConn) accepts(name, subclass string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.eventsOn || c.killed || c.sessionDown {
		return false
	}
	if c.all {
		return true
	}
	if !c.names[name] {
		return false
	}
	if name == "CUSTOM" && subclass != "" {
		return c.custom[subclass]
	}
	return true
}

// deliver applies filters and myevents and queues the event.
func (c *eslConn) deliver(o *outEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.filters) > 0 && !c.passFilters(o.ev) {
		return
	}
	if c.myevents {
		if o.uuid == "" && o.ev.Get("Unique-ID") == "" {
			return
		}
		if c.session != nil && o.ev.Get("Unique-ID") != c.sessionUUID {
			return
		}
	}
	if len(c.queue) >= maxQueueLen {
		c.lost++
		if c.lost > maxMissed && !c.killed {
			c.s.log.Warn("killing event socket listener: too many lost events", "lost", c.lost)
			c.killed = true
			close(c.kill)
			c.conn.Close()
		}
		return
	}
	c.queue = append(c.queue, o)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// passFilters is event_handler's filter evaluation. Callers hold c.mu.
func (c *eslConn) passFilters(ev *event.Event) bool {
	send := false
	for _, f := range c.filters {
		hval, ok := headerFold(ev, f.header)
		if !ok {
			continue
		}
		comp := f.value
		pos := true
		for len(comp) > 0 {
			if comp[0] == '+' {
				pos = true
			} else if comp[0] == '-' {
				pos = false
			} else if comp[0] != ' ' {
				break
			}
			comp = comp[1:]
		}
		if send && pos {
			continue
		}
		var cmp bool
		if f.re != nil {
			cmp = f.re.MatchString(hval)
		} else {
			cmp = strings.EqualFold(hval, comp)
		}
		if cmp {
			if !pos {
				return false
			}
			send = true
		}
	}
	return send
}

func headerFold(ev *event.Event, name string) (string, bool) {
	for _, hd := range ev.Headers {
		if strings.EqualFold(hd.Name, name) {
			return hd.Value, true
		}
	}
	if strings.EqualFold(name, "Content-Length") && ev.Body != "" {
		return strconv.Itoa(len(ev.Body)), true
	}
	return "", false
}

// readCommands parses commands as read_packet does: a header block ended by
// a blank line, "\r" ignored, leading blank lines skipped, Content-Length
// bodies read, and a block cut at 10 MB.
func (c *eslConn) readCommands(out chan<- *command) {
	defer close(out)
	br := bufio.NewReaderSize(c.conn, 64<<10)
	var block []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			block = append(block, line...)
			if len(block) >= maxPacket {
				out <- parseCommand(block[:maxPacket])
				block = block[:0]
			}
			continue
		}
		if err != nil {
			return
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			if len(bytes.TrimSpace(block)) == 0 {
				block = block[:0]
				continue // "bah": leading blank lines
			}
			cmd := parseCommand(block)
			block = block[:0]
			if cl, ok := cmd.header("Content-Length"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(cl))
				if n > 0 && n <= maxPacket {
					body := make([]byte, n)
					if _, err := io.ReadFull(br, body); err != nil {
						return
					}
					cmd.body = string(body)
				}
			}
			select {
			case out <- cmd:
			case <-c.closed:
				return
			}
			continue
		}
		block = append(block, line...)
		if len(block) >= maxPacket {
			out <- parseCommand(block[:maxPacket])
			block = block[:0]
		}
	}
}

func parseCommand(block []byte) *command {
	lines := strings.Split(strings.ReplaceAll(string(block), "\r", ""), "\n")
	cmd := &command{line: lines[0]}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		cmd.headers = append(cmd.headers, event.Header{Name: k, Value: strings.TrimLeft(v, " ")})
	}
	return cmd
}

// serve runs the listener until the client leaves or is dropped.
func (c *eslConn) serve() {
	s := c.s
	defer func() {
		close(c.closed)
		s.bus.remove(c)
		s.connsMu.Lock()
		delete(s.conns, c)
		s.connsMu.Unlock()
		c.conn.Close()
		c.releaseSession()
	}()
	s.bus.add(c)
	cmds := make(chan *command, 1)
	go c.readCommands(cmds)
	if !c.outbound {
		c.write("Content-Type: auth/request\n\n")
		c.flush()
	}
	var lingerTimer <-chan time.Time
	for {
		c.flushEvents()
		select {
		case cmd, ok := <-cmds:
			if !ok {
				return
			}
			c.flushEvents()
			if !c.handle(cmd) {
				c.flushEvents()
				c.goodbye()
				return
			}
			c.flush()
		case <-c.wake:
		case <-c.down:
			c.flushEvents()
			c.mu.Lock()
			linger, secs := c.linger, c.lingerSecs
			c.mu.Unlock()
			if !linger {
				c.goodbye()
				return
			}
			c.writef("Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\nContent-Disposition: linger\nChannel-Name: %s\nLinger-Time: %d\nContent-Length: 0\n\n",
				c.sessionUUID, c.sessionName(), secs)
			c.flush()
			if secs >= 0 {
				lingerTimer = time.After(time.Duration(secs) * time.Second)
			}
		case <-lingerTimer:
			c.goodbye()
			return
		case <-c.kill:
			return
		case <-s.closed:
			c.flushEvents()
			c.goodbyeWith("The system is being shut down.\n")
			return
		}
	}
}

func (c *eslConn) sessionName() string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.session != nil {
		return c.session.name
	}
	return ""
}

// goodbye sends the disconnect notice listener_run ends with.
func (c *eslConn) goodbye() { c.goodbyeWith(disconnectMsg) }

func (c *eslConn) goodbyeWith(msg string) {
	c.mu.Lock()
	uuid := c.sessionUUID
	c.mu.Unlock()
	if uuid != "" {
		c.writef("Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\nContent-Disposition: disconnect\nContent-Length: %d\n\n%s", uuid, len(msg), msg)
	} else {
		c.writef("Content-Type: text/disconnect-notice\nContent-Length: %d\n\n%s", len(msg), msg)
	}
	c.flush()
}

// releaseSession hangs up a parked session whose controlling socket went
// away, as FreeSWITCH does for myevents/outbound sockets.
func (c *eslConn) releaseSession() {
	c.mu.Lock()
	ch, down := c.session, c.sessionDown
	c.mu.Unlock()
	if ch == nil || down {
		return
	}
	s := c.s
	s.mu.Lock()
	for i, l := range ch.controlled {
		if l == c {
			ch.controlled = append(ch.controlled[:i], ch.controlled[i+1:]...)
			break
		}
	}
	resume, _ := ch.vars.get("socket_resume")
	if ch.ready() && resume != "true" {
		ch.hangup("NORMAL_CLEARING")
	}
	s.mu.Unlock()
}

// sessionGone is called by the core when the controlled channel reported
// CHANNEL_HANGUP_COMPLETE. Callers hold s.mu.
func (c *eslConn) sessionGone(ch *Channel) {
	c.mu.Lock()
	c.sessionDown = true
	c.mu.Unlock()
	select {
	case c.down <- struct{}{}:
	default:
	}
}

func (c *eslConn) write(s string) { c.bw.WriteString(s) }

func (c *eslConn) writef(format string, args ...any) {
	fmt.Fprintf(c.bw, format, args...)
}

func (c *eslConn) flush() {
	if err := c.bw.Flush(); err != nil {
		c.conn.Close()
	}
}

// flushEvents writes every queued event.
func (c *eslConn) flushEvents() {
	c.mu.Lock()
	q := c.queue
	c.queue = nil
	f := c.format
	c.mu.Unlock()
	if len(q) == 0 {
		return
	}
	for _, o := range q {
		c.bw.Write(o.frame(f))
	}
	c.s.counts.eventsSent.Add(int64(len(q)))
	c.flush()
}

// reply writes a command/reply, after the fault-injected stall if any.
func (c *eslConn) reply(text string) {
	c.stall()
	if len(text) > 511 {
		text = text[:511]
	}
	c.write("Content-Type: command/reply\nReply-Text: " + text + "\n\n")
}

func (c *eslConn) stall() {
	if ms := c.s.stall.Load(); ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
}

// handle runs one command; false ends the connection.
func (c *eslConn) handle(cmd *command) bool {
	line := strings.TrimRight(cmd.line, "\r\n")
	lower := strings.ToLower(line)
	c.mu.Lock()
	authed := c.authed || c.outbound
	c.mu.Unlock()
	if strings.HasPrefix(lower, "exit") || strings.HasPrefix(lower, "...") {
		c.reply("+OK bye")
		return false
	}
	if !authed {
		if strings.HasPrefix(lower, "auth ") {
			if line[5:] == c.s.cfg.Password {
				c.mu.Lock()
				c.authed = true
				c.mu.Unlock()
				c.reply("+OK accepted")
				return true
			}
			c.reply("-ERR invalid")
			return false
		}
		if strings.HasPrefix(lower, "userauth ") {
			c.reply("-ERR invalid")
			return false
		}
		c.reply("-ERR command not found")
		return true
	}
	switch {
	case strings.HasPrefix(lower, "filter "):
		c.reply(c.cmdFilter(line[7:]))
		return true
	}
	c.mu.Lock()
	hasSession := c.session != nil
	c.mu.Unlock()
	if hasSession && strings.HasPrefix(lower, "resume") {
		c.s.mu.Lock()
		c.session.vars.set("socket_resume", "true")
		c.s.mu.Unlock()
		c.reply("+OK")
		return true
	}
	if hasSession || strings.HasPrefix(lower, "myevents ") {
		switch {
		case strings.HasPrefix(lower, "connect"):
			c.cmdConnect()
			return true
		case strings.HasPrefix(lower, "getvar"):
			val := ""
			if _, name, ok := strings.Cut(line, " "); ok && hasSession {
				c.s.mu.Lock()
				val, _ = c.session.vars.get(name)
				c.s.mu.Unlock()
			}
			c.reply(val)
			return true
		case strings.HasPrefix(lower, "myevents"):
			c.reply(c.cmdMyevents(line))
			return true
		}
	}
	switch {
	case strings.HasPrefix(lower, "divert_events"):
		if !hasSession {
			c.reply("-ERR not controlling a session.")
		} else if strings.TrimSpace(line[13:]) == "" {
			c.reply("-ERR missing value.")
		} else if strings.EqualFold(strings.TrimSpace(line[13:]), "on") {
			c.reply("+OK events diverted")
		} else {
			c.reply("+OK events not diverted")
		}
		return true
	case strings.HasPrefix(lower, "sendmsg"):
		c.reply(c.cmdSendmsg(line[7:], cmd))
		return true
	}
	c.mu.Lock()
	restricted := c.outbound && !c.full
	c.mu.Unlock()
	if restricted {
		c.reply("-ERR command not found")
		return true
	}
	switch {
	case strings.HasPrefix(lower, "sendevent"):
		c.reply(c.cmdSendevent(line[9:], cmd))
	case strings.HasPrefix(lower, "api "):
		c.cmdAPI(line[4:])
	case strings.HasPrefix(lower, "bgapi "):
		c.cmdBgapi(line[6:], cmd)
	case strings.HasPrefix(lower, "log"):
		c.reply("+OK log level " + strings.TrimSpace(line[3:]) + " [7]")
	case strings.HasPrefix(lower, "linger"):
		if !hasSession {
			c.reply("-ERR not controlling a session")
			break
		}
		secs := -1
		if len(line) > 7 && line[6] == ' ' {
			secs, _ = strconv.Atoi(strings.TrimSpace(line[7:]))
		}
		c.mu.Lock()
		c.linger, c.lingerSecs = true, secs
		c.mu.Unlock()
		if secs != -1 {
			c.reply("+OK will linger " + strconv.Itoa(secs) + " seconds")
		} else {
			c.reply("+OK will linger")
		}
	case strings.HasPrefix(lower, "nolinger"):
		if !hasSession {
			c.reply("-ERR not controlling a session")
			break
		}
		c.mu.Lock()
		c.linger = false
		c.mu.Unlock()
		c.reply("+OK will not linger")
	case strings.HasPrefix(lower, "nolog"):
		c.reply("-ERR not loging")
	case strings.HasPrefix(lower, "event"):
		c.reply(c.cmdEvent(line))
	case strings.HasPrefix(lower, "nixevent"):
		c.reply(c.cmdNixevent(line))
	case strings.HasPrefix(lower, "noevents"):
		c.mu.Lock()
		was := c.eventsOn
		c.queue = nil
		c.eventsOn, c.all = false, false
		c.names, c.custom = map[string]bool{}, map[string]bool{}
		c.mu.Unlock()
		if was {
			c.reply("+OK no longer listening for events")
		} else {
			c.reply("-ERR not listening for events")
		}
	default:
		c.reply("-ERR command not found")
	}
	return true
}

func (c *eslConn) cmdFilter(rest string) string {
	rest = strings.TrimLeft(rest, " ")
	name, val, hasVal := strings.Cut(rest, " ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.EqualFold(name, "delete") && hasVal {
		name, val, hasVal = strings.Cut(val, " ")
		if strings.EqualFold(name, "all") {
			c.filters = nil
		} else {
			for i := 0; i < len(c.filters); i++ {
				f := c.filters[i]
				if strings.EqualFold(f.header, name) && (!hasVal || f.value == val) {
					c.filters = append(c.filters[:i], c.filters[i+1:]...)
					i--
				}
			}
		}
		if !hasVal {
			val = ""
		}
		return "+OK filter deleted. [" + name + "][" + val + "]"
	}
	if !hasVal {
		return "-ERR invalid syntax"
	}
	if strings.EqualFold(name, "add") {
		name, val, _ = strings.Cut(val, " ")
	}
	f := filter{header: name, value: val}
	if strings.HasPrefix(val, "/") {
		pat := strings.TrimSuffix(strings.TrimPrefix(val, "/"), "/")
		if re, err := regexp.Compile(pat); err == nil {
			f.re = re
		}
	}
	c.filters = append(c.filters, f)
	return "+OK filter added. [" + name + "]=[" + val + "]"
}

func (c *eslConn) cmdEvent(line string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, rest, ok := strings.Cut(line[5:], " ")
	keys := 0
	custom := false
	if ok {
		for i, tok := range strings.Split(rest, " ") {
			if i == 0 {
				if f, ok := event.ParseFormat(tok); ok {
					c.format = f
					continue
				}
			}
			if custom {
				c.custom[tok] = true
				continue
			}
			up := strings.ToUpper(tok)
			if !eventNames[up] {
				continue
			}
			keys++
			switch up {
			case "ALL":
				c.all = true
			case "CUSTOM":
				custom = true
				c.names[up] = true
			default:
				c.names[up] = true
			}
		}
	}
	if keys == 0 {
		return "-ERR no keywords supplied"
	}
	c.eventsOn = true
	return "+OK event listener enabled " + c.format.String()
}

func (c *eslConn) cmdNixevent(line string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, rest, ok := strings.Cut(line[5:], " ")
	keys := 0
	custom := false
	if ok {
		for _, tok := range strings.Split(rest, " ") {
			if custom {
				delete(c.custom, tok)
				continue
			}
			up := strings.ToUpper(tok)
			if !eventNames[up] {
				continue
			}
			keys++
			switch up {
			case "CUSTOM":
				custom = true
			case "ALL":
				c.all = false
				c.names = map[string]bool{}
			default:
				if c.all {
					c.all = false
					for n := range eventNames {
						if n != "ALL" {
							c.names[n] = true
						}
					}
				}
				delete(c.names, up)
			}
		}
	}
	if keys == 0 {
		return "-ERR no keywords supplied"
	}
	c.eventsOn = true
	return "+OK events nixed"
}

func (c *eslConn) cmdMyevents(line string) string {
	c.mu.Lock()
	if c.myevents {
		c.mu.Unlock()
		return "-ERR aready enabled."
	}
	hasSession := c.session != nil
	c.mu.Unlock()
	var ch *Channel
	if !hasSession {
		arg := strings.TrimSpace(line[min(9, len(line)):])
		uuid, fmtArg, hasFmt := strings.Cut(arg, " ")
		s := c.s
		s.mu.Lock()
		ch = s.channel(uuid)
		if ch == nil && hasFmt {
			s.mu.Unlock()
			return "-ERR invalid uuid"
		}
		_ = fmtArg
		if ch != nil {
			ch.controlled = append(ch.controlled, c)
		}
		s.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch != nil {
		c.session, c.sessionUUID, c.asyncMode = ch, ch.uuid, true
	}
	for _, n := range myeventsList {
		c.names[n] = true
	}
	c.myevents, c.eventsOn = true, true
	// FreeSWITCH looks for the format in what is left of the command after
	// it cut the uuid off, so "myevents <uuid> json" stays plain.
	probe := line
	if ch != nil {
		probe = line[:min(len(line), 9+len(ch.uuid))]
	}
	if strings.Contains(probe, "xml") || strings.Contains(probe, "XML") {
		c.format = event.XML
	}
	if strings.Contains(probe, "json") || strings.Contains(probe, "JSON") {
		c.format = event.JSON
	}
	return "+OK Events Enabled"
}

func (c *eslConn) cmdSendmsg(rest string, cmd *command) string {
	uuid := strings.TrimSpace(rest)
	if uuid == "" {
		uuid, _ = cmd.header("session-id")
	}
	c.mu.Lock()
	sess := c.session
	c.mu.Unlock()
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess != nil && uuid == sess.uuid {
		uuid = ""
	}
	var target *Channel
	if uuid == "" && sess != nil {
		target = sess
	} else if uuid != "" {
		target = s.channel(uuid)
	}
	if target == nil {
		return "-ERR invalid session id [" + uuid + "]"
	}
	callCmd, _ := cmd.header("call-command")
	switch strings.ToLower(callCmd) {
	case "execute":
		m := message{kind: msgExecute}
		m.app, _ = cmd.header("execute-app-name")
		m.arg, _ = cmd.header("execute-app-arg")
		if ct, _ := cmd.header("content-type"); strings.EqualFold(ct, "text/plain") && cmd.body != "" {
			m.arg = cmd.body
		}
		m.eventUUID, _ = cmd.header("Event-UUID")
		if l, ok := cmd.header("loops"); ok {
			m.loops, _ = strconv.Atoi(l)
		}
		target.push(m)
	case "hangup":
		cause, _ := cmd.header("hangup-cause")
		if cause == "" {
			cause = "NORMAL_CLEARING"
		}
		target.hangup(cause)
	case "xferext":
		var apps []app
		for _, hd := range cmd.headers {
			if strings.EqualFold(hd.Name, "application") {
				n, a, _ := strings.Cut(hd.Value, " ")
				apps = append(apps, app{n, a})
			}
		}
		target.pushTransferApps(apps)
	}
	return "+OK"
}

func (c *eslConn) cmdSendevent(rest string, cmd *command) string {
	name := strings.ToUpper(strings.TrimSpace(rest))
	id := newUUID()
	if !eventNames[name] {
		name = "CUSTOM"
	}
	sub, _ := cmd.header("Event-Subclass")
	s := c.s
	s.mu.Lock()
	s.bus.fire(name, sub, func(e *eventBuilder) {
		e.file, e.fn, e.line = "mod_event_socket.c", "parse_command", 2111
		for _, hd := range cmd.headers {
			if strings.EqualFold(hd.Name, "Event-Subclass") || strings.EqualFold(hd.Name, "Content-Length") {
				continue
			}
			e.add(hd.Name, hd.Value)
		}
		e.add("Event-UUID", id)
		e.body, e.hasBody = cmd.body, cmd.body != ""
	})
	s.mu.Unlock()
	return "+OK " + id
}

func splitAPI(rest string) (string, string) {
	rest = strings.TrimRight(rest, "\r\n")
	cmdName, arg, _ := strings.Cut(rest, " ")
	return cmdName, arg
}

func apiBody(cmdName string, res apiResult, ok bool) string {
	if !ok {
		return "-ERR " + cmdName + " Command not found!\n"
	}
	return res.body
}

func (c *eslConn) cmdAPI(rest string) {
	cmdName, arg := splitAPI(rest)
	res, ok := c.s.api(cmdName, arg)
	body := apiBody(cmdName, res, ok)
	if body == "" {
		body = "-ERR no reply\n"
	}
	if res.after != nil {
		res.after()
	}
	c.stall()
	c.writef("Content-Type: api/response\nContent-Length: %d\n\n", len(body))
	c.write(body)
}

func (c *eslConn) cmdBgapi(rest string, cmd *command) {
	cmdName, arg := splitAPI(rest)
	jobUUID, ok := cmd.header("job-uuid")
	if !ok || jobUUID == "" {
		jobUUID = newUUID()
	}
	c.stall()
	c.write("Content-Type: command/reply\nReply-Text: +OK Job-UUID: " + jobUUID + "\nJob-UUID: " + jobUUID + "\n\n")
	s := c.s
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.mu.Lock()
		epoch := s.epoch
		s.mu.Unlock()
		res, ok := s.api(cmdName, arg)
		body := apiBody(cmdName, res, ok)
		if body == "" {
			body = "Command returned no output!"
		}
		s.mu.Lock()
		if s.epoch != epoch {
			s.mu.Unlock() // the job died with the "restarted" switch
			return
		}
		s.bus.fire("BACKGROUND_JOB", "", func(e *eventBuilder) {
			e.file, e.fn, e.line = "mod_event_socket.c", "api_exec", 1572
			e.add("Job-UUID", jobUUID)
			e.add("Job-Command", cmdName)
			if arg != "" {
				e.add("Job-Command-Arg", arg)
			}
			e.body, e.hasBody = body, true
		})
		s.mu.Unlock()
		if res.after != nil {
			res.after()
		}
	}()
}

// cmdConnect answers an outbound socket's connect with the channel's data.
func (c *eslConn) cmdConnect() {
	s := c.s
	c.mu.Lock()
	ch := c.session
	async, full := c.asyncMode, c.full
	c.mu.Unlock()
	s.mu.Lock()
	ev := s.channelDataEvent(ch)
	hs := ev.Headers[:0:0]
	for _, hd := range ev.Headers {
		hs = append(hs, hd)
	}
	prof := ch.prof.appendTo(nil, "Channel-", true)
	s.mu.Unlock()
	// connect's reply: the caller profile as Channel-*, the channel data,
	// then the reply headers, all in plain event form.
	out := &event.Event{}
	out.Headers = append(out.Headers, hs[:13]...)
	out.Headers = append(out.Headers, prof...)
	out.Headers = append(out.Headers, hs[13:]...)
	mode, control := "static", "single-channel"
	if async {
		mode = "async"
	}
	if full {
		control = "full"
	}
	out.Headers = append(out.Headers, h("Content-Type", "command/reply"), h("Reply-Text", "+OK\n"), h("Socket-Mode", mode), h("Control", control))
	c.stall()
	c.bw.Write(event.AppendPayload(nil, event.Plain, out))
	c.mu.Lock()
	select {
	case <-c.connected:
	default:
		close(c.connected)
	}
	c.mu.Unlock()
}

// pushTransferApps makes the session thread run apps next (sendmsg xferext).
// Callers hold s.mu.
func (ch *Channel) pushTransferApps(apps []app) {
	if len(apps) == 0 {
		return
	}
	for _, a := range apps {
		ch.push(message{kind: msgExecute, app: a.name, arg: a.arg})
	}
}
