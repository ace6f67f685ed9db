package sim

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
)

const (
	versionLong  = "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit"
	versionShort = "1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit"
)

// apiResult is an API command's output; after, when set, runs once the
// output has been delivered (bgapi fires BACKGROUND_JOB first), so that
// events the command causes follow its reply as in FreeSWITCH.
type apiResult struct {
	body  string
	after func()
}

// api executes an API command as switch_api_execute does. The second result
// is false when the command does not exist.
func (s *Sim) api(cmd, arg string) (apiResult, bool) {
	s.counts.commands.Add(1)
	s.mu.Lock()
	s.bus.fire("API", "", func(e *eventBuilder) {
		e.file, e.fn, e.line = "switch_loadable_module.c", "switch_api_execute", 2954
		e.add("API-Command", cmd)
		if arg != "" {
			e.add("API-Command-Argument", arg)
		}
	})
	s.mu.Unlock()
	switch cmd {
	case "originate":
		return s.apiOriginate(arg), true
	case "status":
		return s.locked(func() string { return s.status() }), true
	case "version":
		return apiResult{body: "FreeSWITCH Version " + versionLong + " (git a88d069 2024-08-02 21:02:27Z 64bit)\n"}, true
	case "uuid_kill":
		return s.locked(func() string { return s.apiUUIDKill(arg) }), true
	case "uuid_bridge":
		return s.locked(func() string { return s.apiUUIDBridge(arg) }), true
	case "uuid_transfer":
		return s.locked(func() string { return s.apiUUIDTransfer(arg) }), true
	case "uuid_broadcast":
		return s.locked(func() string { return s.apiUUIDBroadcast(arg) }), true
	case "uuid_break":
		return s.locked(func() string {
			c := s.channel(firstField(arg))
			if c == nil {
				return "-ERR No such channel!\n"
			}
			if f := strings.Fields(arg); len(f) > 1 && strings.Contains(f[1], "all") {
				// mod_commands' break_function: "all" also flushes the
				// channel's private events, the broadcasts queued behind
				// what plays.
				c.queue = slices.DeleteFunc(c.queue, func(m message) bool { return m.kind == msgExecute })
			}
			c.push(message{kind: msgBreak})
			return "+OK\n"
		}), true
	case "uuid_answer", "uuid_pre_answer":
		return s.locked(func() string {
			c := s.channel(firstField(arg))
			if c == nil {
				return "-ERR No such channel!\n"
			}
			if cmd == "uuid_answer" {
				c.markAnswered()
			} else {
				c.preAnswer()
			}
			return "+OK\n"
		}), true
	case "uuid_setvar":
		return s.locked(func() string {
			f := strings.SplitN(arg, " ", 3)
			if len(f) < 2 {
				return "-USAGE: <uuid> <var> [value]\n"
			}
			c := s.channel(f[0])
			if c == nil {
				return "-ERR No such channel!\n"
			}
			if len(f) == 3 && f[2] != "" {
				c.vars.set(f[1], f[2])
			} else {
				c.vars.unset(f[1])
			}
			return "+OK\n"
		}), true
	case "uuid_setvar_multi":
		return s.locked(func() string {
			id, list, ok := strings.Cut(arg, " ")
			if !ok {
				return "-USAGE: <uuid> <var>=<value>;<var>=<value>...\n"
			}
			c := s.channel(id)
			if c == nil {
				return "-ERR No such channel!\n"
			}
			for _, kv := range strings.Split(list, ";") {
				k, v, _ := strings.Cut(kv, "=")
				if k == "" {
					continue
				}
				if v == "" {
					c.vars.unset(k)
				} else {
					c.vars.set(k, v)
				}
			}
			return "+OK\n"
		}), true
	case "uuid_getvar":
		return s.locked(func() string {
			f := strings.Fields(arg)
			if len(f) < 2 {
				return "-USAGE: <uuid> <var>\n"
			}
			c := s.channel(f[0])
			if c == nil {
				return "-ERR No such channel!\n"
			}
			if v, ok := c.vars.get(f[1]); ok {
				return v
			}
			return "_undef_"
		}), true
	case "uuid_exists":
		return s.locked(func() string { return strconv.FormatBool(s.channel(firstField(arg)) != nil) }), true
	case "uuid_dump":
		return s.locked(func() string { return s.apiUUIDDump(arg) }), true
	case "show":
		return s.locked(func() string { return s.apiShow(arg) }), true
	case "hupall":
		return s.locked(func() string {
			cause := firstField(arg)
			if cause == "" {
				cause = "MANAGER_REQUEST"
			}
			cause = causeOrDefault(cause)
			for _, c := range s.sortedChannels() {
				c.hangup(cause)
			}
			return "+OK hangup all channels with cause " + cause + "\n"
		}), true
	case "create_uuid":
		return apiResult{body: newUUID()}, true
	case "fsctl":
		return s.locked(func() string { return s.apiFsctl(arg) }), true
	case "sched_hangup":
		return s.locked(func() string {
			f := strings.Fields(arg)
			if len(f) < 2 {
				return "-ERR Invalid syntax\n"
			}
			c := s.channel(f[1])
			if c == nil {
				return "-ERR No such channel!\n"
			}
			secs, _ := strconv.Atoi(strings.TrimPrefix(f[0], "+"))
			cause := "ALLOTTED_TIMEOUT"
			if len(f) > 2 {
				cause = f[2]
			}
			s.schedHangup(c, time.Duration(secs)*time.Second, cause)
			return "+OK\n"
		}), true
	case "sched_del":
		return s.locked(func() string {
			id := firstField(arg)
			n := 0
			for _, t := range s.scheduled[id] {
				if t.Stop() {
					n++
				}
			}
			delete(s.scheduled, id)
			return fmt.Sprintf("+OK Deleted: %d\n", n)
		}), true
	case "conference":
		return s.locked(func() string { return s.conferenceAPI(arg) }), true
	case "global_getvar":
		return s.locked(func() string {
			v, _ := s.globals.get(strings.TrimSpace(arg))
			return v
		}), true
	case "global_setvar":
		return s.locked(func() string {
			k, v, _ := strings.Cut(arg, "=")
			s.globals.set(strings.TrimSpace(k), strings.TrimSpace(v))
			return "+OK\n"
		}), true
	case "sofia":
		return apiResult{body: sofiaStatus}, true
	case "eval":
		return apiResult{body: arg}, true
	}
	return apiResult{}, false
}

const sofiaStatus = "                     Name\t   Type\t                                      Data\tState\n" +
	"=================================================================================================\n" +
	"                127.0.0.1\t  alias\t                                  internal\tALIASED\n" +
	"                 external\tprofile\t              sip:mod_sofia@127.0.0.1:5080\tRUNNING (0)\n" +
	"        external::carrier\tgateway\t                    sip:carrier@127.0.0.1\tNOREG\n" +
	"                 internal\tprofile\t              sip:mod_sofia@127.0.0.1:5060\tRUNNING (0)\n" +
	"=================================================================================================\n" +
	"2 profiles 1 alias\n"

func (s *Sim) locked(f func() string) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return apiResult{body: f()}
}

func firstField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func (s *Sim) apiOriginate(arg string) apiResult {
	argv := splitArgs(arg)
	if len(argv) < 2 {
		return apiResult{body: originateUsage}
	}
	dial, exten := argv[0], argv[1]
	o := originateOpts{}
	context := "default"
	if len(argv) > 3 {
		context = argv[3]
	}
	if len(argv) > 4 {
		o.cidName = argv[4]
	}
	if len(argv) > 5 {
		o.cidNum = argv[5]
	}
	if len(argv) > 6 {
		if n, err := strconv.Atoi(argv[6]); err == nil && n > 0 {
			o.timeout = time.Duration(n) * time.Second
		}
	}
	var apps []app
	if a, ok := parseAppString(exten); ok {
		apps = []app{a}
	}
	c, cause := s.originate(dial, o)
	if c == nil {
		if cause == errRestarted {
			cause = "NORMAL_TEMPORARY_FAILURE"
		}
		return apiResult{body: "-ERR " + cause + "\n"}
	}
	return apiResult{body: "+OK " + c.uuid + "\n", after: func() {
		if apps == nil {
			next, ok := c.route(exten, context)
			if !ok {
				s.mu.Lock()
				c.hangup("NO_ROUTE_DESTINATION")
				s.mu.Unlock()
				return
			}
			apps = next
		}
		c.execStart <- apps
	}}
}

func (s *Sim) apiUUIDKill(arg string) string {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "-USAGE: <uuid> [cause]\n"
	}
	c := s.channel(f[0])
	if c == nil {
		return "-ERR No such channel!\n"
	}
	cause := "NORMAL_CLEARING"
	if len(f) > 1 {
		cause = f[1]
	}
	c.hangup(cause)
	return "+OK\n"
}

func (s *Sim) apiUUIDBridge(arg string) string {
	f := strings.Fields(arg)
	if len(f) < 2 {
		return "-USAGE: <uuid> <other_uuid>\n"
	}
	a, b := s.channel(f[0]), s.channel(f[1])
	if a == nil || b == nil || !a.ready() || !b.ready() {
		return "-ERR Invalid uuid\n"
	}
	a.push(message{kind: msgBridge, peer: b})
	b.push(message{kind: msgBridge, peer: a, lock: true})
	return "+OK " + b.uuid + "\n"
}

func (s *Sim) apiUUIDTransfer(arg string) string {
	f := strings.Fields(arg)
	if len(f) < 2 {
		return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
	}
	c := s.channel(f[0])
	if c == nil {
		return "-ERR No such channel!\n"
	}
	f = f[1:]
	if f[0] == "-bleg" || f[0] == "-both" {
		if c.bridgePeer != nil && f[0] == "-bleg" {
			c = c.bridgePeer
		}
		f = f[1:]
	}
	if len(f) == 0 {
		return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
	}
	m := message{kind: msgTransfer, exten: f[0], context: "default"}
	if len(f) > 2 {
		m.context = f[2]
	}
	c.push(m)
	return "+OK\n"
}

func (s *Sim) apiUUIDBroadcast(arg string) string {
	f := strings.Fields(arg)
	if len(f) < 2 {
		return "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"
	}
	c := s.channel(f[0])
	if c == nil {
		return "-ERR invalid uuid\n"
	}
	target := []*Channel{c}
	if len(f) > 2 {
		switch f[2] {
		case "bleg":
			target = nil
			if c.bridgePeer != nil {
				target = []*Channel{c.bridgePeer}
			}
		case "both":
			if c.bridgePeer != nil {
				target = append(target, c.bridgePeer)
			}
		}
	}
	appName, appArg := "playback", f[1]
	if n, a, ok := strings.Cut(f[1], "::"); ok {
		appName, appArg = n, a
	}
	for _, t := range target {
		t.push(message{kind: msgExecute, app: appName, arg: appArg})
	}
	return "+OK Message sent\n"
}

func (s *Sim) apiUUIDDump(arg string) string {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "-USAGE: <uuid> [format]\n"
	}
	c := s.channel(f[0])
	if c == nil {
		return "-ERR No such channel!\n"
	}
	ev := s.channelDataEvent(c)
	if len(f) > 1 && f[1] == "json" {
		return string(event.AppendPayload(nil, event.JSON, ev))
	}
	var b strings.Builder
	for _, hd := range ev.Headers {
		b.WriteString(hd.Name)
		b.WriteString(": ")
		b.WriteString(hd.Value)
		b.WriteByte('\n')
	}
	return b.String()
}

// channelDataEvent builds a CHANNEL_DATA event for a channel without firing
// it (uuid_dump, the outbound socket's connect reply). Callers hold s.mu.
func (s *Sim) channelDataEvent(c *Channel) *event.Event {
	now := s.clock.Now()
	hs := []event.Header{
		h("Event-Name", "CHANNEL_DATA"), h("Core-UUID", s.hs.coreUUID),
		h("FreeSWITCH-Hostname", s.hs.hostname), h("FreeSWITCH-Switchname", s.hs.hostname),
		h("FreeSWITCH-IPv4", s.hs.ipv4), h("FreeSWITCH-IPv6", s.hs.ipv6),
		h("Event-Date-Local", now.Local().Format("2006-01-02 15:04:05")),
		h("Event-Date-GMT", now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")),
		h("Event-Date-Timestamp", strconv.FormatInt(now.UnixMicro(), 10)),
		h("Event-Calling-File", "switch_ivr.c"), h("Event-Calling-Function", "switch_ivr_uuid_dump"),
		h("Event-Calling-Line-Number", "0"), h("Event-Sequence", "0"),
	}
	return &event.Event{Headers: c.eventData("CHANNEL_DATA", hs)}
}

func (s *Sim) apiFsctl(arg string) string {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "-ERR Usage: fsctl [sps|max_sessions|...]\n"
	}
	switch f[0] {
	case "sps":
		if len(f) > 1 {
			if n, err := strconv.Atoi(f[1]); err == nil && n >= 0 {
				s.spsLimit = n
			}
		}
		return fmt.Sprintf("+OK sessions per second: %d\n", s.spsLimit)
	case "max_sessions":
		if len(f) > 1 {
			if n, err := strconv.Atoi(f[1]); err == nil && n >= 0 {
				s.maxSessions = n
			}
		}
		return fmt.Sprintf("+OK max sessions: %d\n", s.maxSessions)
	}
	return "-ERR INVALID COMMAND\n"
}

func (s *Sim) uptime() string {
	d := s.clock.Now().Sub(s.startedAt)
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	hh := int(d / time.Hour)
	d -= time.Duration(hh) * time.Hour
	mm := int(d / time.Minute)
	d -= time.Duration(mm) * time.Minute
	ss := int(d / time.Second)
	d -= time.Duration(ss) * time.Second
	ms := int(d / time.Millisecond)
	d -= time.Duration(ms) * time.Millisecond
	us := int(d / time.Microsecond)
	return fmt.Sprintf("0 years, %d day%s, %d hour%s, %d minute%s, %d second%s, %d millisecond%s, %d microsecond%s",
		days, plural(days), hh, plural(hh), mm, plural(mm), ss, plural(ss), ms, plural(ms), us, plural(us))
}

func (s *Sim) status() string {
	return fmt.Sprintf("UP %s\nFreeSWITCH (Version %s) is ready\n%d session(s) since startup\n%d session(s) - peak %d, last 5min %d \n%d session(s) per Sec out of max %d, peak %d, last 5min %d \n%d session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n",
		s.uptime(), versionShort, s.sinceStart, len(s.channels), s.peak, s.peak, s.spsLast, s.spsLimit, s.spsPeak, s.spsPeak, s.maxSessions)
}

// fireHeartbeat fires HEARTBEAT then RE_SCHEDULE. Callers hold s.mu.
func (s *Sim) fireHeartbeat(task int) {
	up := s.clock.Now().Sub(s.startedAt)
	s.bus.fire("HEARTBEAT", "", func(e *eventBuilder) {
		e.file, e.fn, e.line = "switch_core.c", "send_heartbeat", 95
		e.add("Event-Info", "System Ready")
		e.add("Up-Time", s.uptime())
		e.add("FreeSWITCH-Version", versionLong)
		e.add("Uptime-msec", strconv.FormatInt(up.Milliseconds(), 10))
		e.add("Session-Count", strconv.Itoa(len(s.channels)))
		e.add("Max-Sessions", strconv.Itoa(s.maxSessions))
		e.add("Session-Per-Sec", strconv.Itoa(s.spsLimit))
		e.add("Session-Per-Sec-Last", strconv.Itoa(s.spsLast))
		e.add("Session-Per-Sec-Max", strconv.Itoa(s.spsPeak))
		e.add("Session-Per-Sec-FiveMin", strconv.Itoa(s.spsPeak))
		e.add("Session-Since-Startup", strconv.Itoa(s.sinceStart))
		e.add("Session-Peak-Max", strconv.Itoa(s.peak))
		e.add("Session-Peak-FiveMin", strconv.Itoa(s.peak))
		e.add("Idle-CPU", "99.000000")
	})
	s.bus.fire("RE_SCHEDULE", "", func(e *eventBuilder) {
		e.file, e.fn, e.line = "switch_scheduler.c", "switch_scheduler_execute", 73
		e.add("Task-ID", "1")
		e.add("Task-Desc", "heartbeat")
		e.add("Task-Group", "core")
		e.add("Task-Runtime", strconv.FormatInt(s.clock.Now().Add(s.cfg.HeartbeatInterval).Unix(), 10))
	})
}

// apiShow implements show channels|calls [count|as json].
func (s *Sim) apiShow(arg string) string {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status\n"
	}
	chans := s.sortedChannels()
	var rows [][][2]string
	switch f[0] {
	case "channels":
		for _, c := range chans {
			rows = append(rows, s.channelRow(c))
		}
	case "calls":
		seen := map[*Channel]bool{}
		for _, c := range chans {
			if seen[c] {
				continue
			}
			seen[c] = true
			row := s.callRow(c)
			if c.bridgePeer != nil {
				seen[c.bridgePeer] = true
			}
			rows = append(rows, row)
		}
	default:
		return "-ERR Unsupported in the simulator: show " + f[0] + "\n"
	}
	rest := f[1:]
	if len(rest) > 0 && rest[0] == "count" {
		return fmt.Sprintf("\n%d total.\n", len(rows))
	}
	if len(rest) > 1 && rest[0] == "as" && rest[1] == "json" {
		if len(rows) == 0 {
			return "{\"row_count\": 0}\n"
		}
		var b []byte
		b = append(b, `{"row_count":`...)
		b = strconv.AppendInt(b, int64(len(rows)), 10)
		b = append(b, `,"rows":[`...)
		for i, r := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			for j, kv := range r {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendQuote(b, kv[0])
				b = append(b, ':')
				b = strconv.AppendQuote(b, kv[1])
			}
			b = append(b, '}')
		}
		b = append(b, "]}"...)
		return string(b)
	}
	if len(rows) == 0 {
		return "\n0 total.\n"
	}
	var b strings.Builder
	for i, kv := range rows[0] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[0])
	}
	b.WriteByte('\n')
	for _, r := range rows {
		for i, kv := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(kv[1])
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "\n%d total.\n", len(rows))
	return b.String()
}

func (s *Sim) channelRow(c *Channel) [][2]string {
	app, _ := c.vars.get("current_application")
	data, _ := c.vars.get("current_application_data")
	created := time.UnixMicro(c.prof.created)
	codec, rate, bit := "", "", ""
	if c.media {
		codec, rate, bit = c.codec, strconv.Itoa(c.codecRate), "64000"
	}
	return [][2]string{
		{"uuid", c.uuid}, {"direction", c.prof.direction}, {"created", created.Local().Format("2006-01-02 15:04:05")},
		{"created_epoch", strconv.FormatInt(created.Unix(), 10)}, {"name", c.name}, {"state", c.running},
		{"cid_name", c.prof.cidName}, {"cid_num", c.prof.cidNumber}, {"ip_addr", c.prof.networkAddr}, {"dest", c.prof.destination},
		{"application", app}, {"application_data", data}, {"dialplan", c.prof.dialplan}, {"context", c.prof.context},
		{"read_codec", codec}, {"read_rate", rate}, {"read_bit_rate", bit}, {"write_codec", codec}, {"write_rate", rate},
		{"write_bit_rate", bit}, {"secure", ""}, {"hostname", s.hs.hostname}, {"presence_id", ""}, {"presence_data", ""},
		{"accountcode", ""}, {"callstate", c.callState}, {"callee_name", c.prof.calleeName}, {"callee_num", c.prof.calleeNumber},
		{"callee_direction", "SEND"}, {"call_uuid", c.callUUID}, {"sent_callee_name", c.prof.calleeName},
		{"sent_callee_num", c.prof.calleeNumber}, {"initial_cid_name", c.prof.origCIDName}, {"initial_cid_num", c.prof.origCIDNumber},
		{"initial_ip_addr", ""}, {"initial_dest", c.prof.destination}, {"initial_dialplan", c.prof.dialplan}, {"initial_context", "default"},
	}
}

func (s *Sim) callRow(c *Channel) [][2]string {
	created := time.UnixMicro(c.prof.created)
	row := [][2]string{
		{"uuid", c.uuid}, {"direction", c.prof.direction}, {"created", created.Local().Format("2006-01-02 15:04:05")},
		{"created_epoch", strconv.FormatInt(created.Unix(), 10)}, {"name", c.name}, {"state", c.running},
		{"cid_name", c.prof.cidName}, {"cid_num", c.prof.cidNumber}, {"ip_addr", c.prof.networkAddr}, {"dest", c.prof.destination},
		{"presence_id", ""}, {"presence_data", ""}, {"accountcode", ""}, {"callstate", c.callState},
		{"callee_name", c.prof.calleeName}, {"callee_num", c.prof.calleeNumber}, {"callee_direction", "SEND"},
		{"call_uuid", c.callUUID}, {"hostname", s.hs.hostname}, {"sent_callee_name", c.prof.calleeName}, {"sent_callee_num", c.prof.calleeNumber},
	}
	b := c.bridgePeer
	get := func(f func(*Channel) string) string {
		if b == nil {
			return ""
		}
		return f(b)
	}
	row = append(row,
		[2]string{"b_uuid", get(func(b *Channel) string { return b.uuid })},
		[2]string{"b_direction", get(func(b *Channel) string { return b.prof.direction })},
		[2]string{"b_created", get(func(b *Channel) string { return time.UnixMicro(b.prof.created).Local().Format("2006-01-02 15:04:05") })},
		[2]string{"b_created_epoch", get(func(b *Channel) string { return strconv.FormatInt(b.prof.created/1e6, 10) })},
		[2]string{"b_name", get(func(b *Channel) string { return b.name })},
		[2]string{"b_state", get(func(b *Channel) string { return b.running })},
		[2]string{"b_cid_name", get(func(b *Channel) string { return b.prof.cidName })},
		[2]string{"b_cid_num", get(func(b *Channel) string { return b.prof.cidNumber })},
		[2]string{"b_ip_addr", get(func(b *Channel) string { return b.prof.networkAddr })},
		[2]string{"b_dest", get(func(b *Channel) string { return b.prof.destination })},
		[2]string{"b_presence_id", ""}, [2]string{"b_presence_data", ""}, [2]string{"b_accountcode", ""},
		[2]string{"b_callstate", get(func(b *Channel) string { return b.callState })},
		[2]string{"b_callee_name", get(func(b *Channel) string { return b.prof.calleeName })},
		[2]string{"b_callee_num", get(func(b *Channel) string { return b.prof.calleeNumber })},
		[2]string{"b_callee_direction", get(func(b *Channel) string { return "SEND" })},
		[2]string{"b_sent_callee_name", get(func(b *Channel) string { return b.prof.calleeName })},
		[2]string{"b_sent_callee_num", get(func(b *Channel) string { return b.prof.cidNumber })},
		[2]string{"call_created_epoch", strconv.FormatInt(c.prof.created/1e6, 10)},
	)
	return row
}

var _ = sort.Strings
