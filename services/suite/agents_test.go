package suite

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// agentState polls an agent until its state is want.
func (e *e2e) agentState(t *testing.T, id, want string, within time.Duration) map[string]any {
	t.Helper()
	var a map[string]any
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		code, out := e.do(t, "GET", "/v1/dialer/agents/"+id, e.key, "")
		if code != 200 {
			t.Fatalf("agent: %d %v", code, out)
		}
		if a = out["agent"].(map[string]any); dig(a, "state") == want {
			return a
		}
	}
	t.Fatalf("agent %s never %s: %v", id, want, a)
	return nil
}

// newAgent creates an endpoint for the simulator's registered user and an
// agent on it for campaigns, and logs it in.
func (e *e2e) newAgent(t *testing.T, user string, wrapUpS int, campaigns ...string) string {
	t.Helper()
	code, ep := e.do(t, "POST", "/v1/endpoints", e.key, `{"name":"phone `+user+`","kind":"ENDPOINT_KIND_REGISTERED_USER","address":"`+user+`"}`)
	if code != 200 {
		t.Fatalf("endpoint: %d %v", code, ep)
	}
	code, ag := e.do(t, "POST", "/v1/dialer/agents", e.key, fmt.Sprintf(`{"name":"agent %s","endpointId":%q,"wrapUpS":%d,"campaignIds":["%s"]}`,
		user, dig(ep, "endpoint", "id"), wrapUpS, strings.Join(campaigns, `","`)))
	if code != 200 {
		t.Fatalf("agent: %d %v", code, ag)
	}
	id := dig(ag, "agent", "id")
	if code, out := e.do(t, "POST", "/v1/dialer/agents/"+id+":login", e.key, `{}`); code != 200 {
		t.Fatalf("login: %d %v", code, out)
	}
	e.agentState(t, id, "AGENT_STATE_READY", 15*time.Second)
	return id
}

// Agents through the real services and the simulator: an AGENTS campaign
// dials one call per free agent, each answered recipient is put in the
// agent's room (their phone stays connected between customers) and the
// agent wraps up and takes the next; with three calls per free agent
// (dial_multiplier 3) and one agent, the two recipients no agent can take
// within agent_wait_ms hear the safe-harbour message, are recorded
// abandoned, their numbers locked out, and the campaign's abandonment is
// in its progress and report.
func TestEndToEndDialerAgents(t *testing.T) {
	e := start(t)
	const harbour = "tone_stream://%(300,0,440)"
	create := func(name, pacing string) string {
		t.Helper()
		code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"`+name+`","defaultCountry":"US","dialAttempts":1,`+
			`"pacing":`+pacing+`,`+allDay+`}`)
		if code != 200 {
			t.Fatalf("create %s: %d %v", name, code, out)
		}
		return dig(out, "campaign", "id")
	}
	progressive := create("Progressive", `{"mode":"PACING_MODE_AGENTS","safeHarbour":"`+harbour+`"}`)
	over := create("Overdial", `{"mode":"PACING_MODE_AGENTS","dialMultiplier":3,"agentWaitMs":1000,"safeHarbour":"`+harbour+`","abandonLockoutS":7200}`)
	// Refused: a paced campaign needs its safe-harbour message.
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"No harbour","pacing":{"mode":"PACING_MODE_PREDICTIVE"}}`); code != 400 {
		t.Fatalf("paced campaign without safe_harbour: %d %v", code, out)
	}
	// TAPERED reads its shift in a time zone: a US campaign names it.
	tapered := `{"mode":"PACING_MODE_PREDICTIVE","method":"ADAPT_METHOD_TAPERED","shiftEnd":"20:00","safeHarbour":"` + harbour + `"`
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"Tapered","defaultCountry":"US","pacing":`+tapered+`}}`); code != 400 ||
		dig(out, "error", "code") != "INVALID_ARGUMENT" || !strings.Contains(dig(out, "error", "message"), "shift_time_zone") {
		t.Fatalf("TAPERED in the US without shift_time_zone: %d %v", code, out)
	}
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"Tapered","defaultCountry":"US","pacing":`+tapered+`,"shiftTimeZone":"Mars/Olympus"}}`); code != 400 {
		t.Fatalf("TAPERED with an unknown zone: %d %v", code, out)
	}
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"Tapered","defaultCountry":"US","pacing":`+tapered+`,"shiftTimeZone":"America/Chicago"}}`); code != 200 ||
		dig(out, "campaign", "pacing", "shiftTimeZone") != "America/Chicago" {
		t.Fatalf("TAPERED with shift_time_zone: %d %v", code, out)
	}
	a1 := e.newAgent(t, "1001", 1, progressive)
	a2 := e.newAgent(t, "1002", 1, progressive)

	// Progressive: six recipients who answer and talk a few seconds, two
	// agents. Nobody is abandoned; every call is connected to an agent.
	var csv strings.Builder
	csv.WriteString("Phone,Name\n")
	for i := range 6 {
		fmt.Fprintf(&csv, "55530%02d001,Customer %d\n", i, i)
	}
	if imp := e.importList(t, e.key, progressive, csv.String()); dig(imp, "list", "records") != "6" {
		t.Fatalf("import: %v", imp)
	}
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns/"+progressive+":start", e.key, `{}`); code != 200 {
		t.Fatalf("start: %d %v", code, out)
	}
	c := e.waitCampaign(t, e.key, progressive, "CAMPAIGN_STATUS_FINISHED", 90*time.Second)
	if ab := c["progress"].(map[string]any)["abandonment"]; dig(ab.(map[string]any), "abandoned24h") != "" && dig(ab.(map[string]any), "abandoned24h") != "0" {
		t.Fatalf("progressive campaign abandoned calls: %v", c["progress"])
	}
	_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+progressive+"/records", e.key, "")
	rooms := map[string]int{}
	for _, r := range recs["records"].([]any) {
		rec := r.(map[string]any)
		if dig(rec, "status") != "answered" {
			t.Fatalf("record %v, want answered", rec)
		}
		call := e.waitFinal(t, dig(rec, "lastCallId"))
		if call["abandoned"] == true || !strings.HasPrefix(dig(call, "conference"), "agent-") {
			t.Fatalf("call %v: want connected to an agent's room", call)
		}
		rooms[dig(call, "conference")]++
	}
	if rooms["agent-"+a1]+rooms["agent-"+a2] != 6 {
		t.Fatalf("calls by room %v, want all 6 with the two agents", rooms)
	}
	for _, id := range []string{a1, a2} {
		a := e.agentState(t, id, "AGENT_STATE_READY", 10*time.Second)
		if dig(a, "sessionCallId") == "" {
			t.Fatalf("agent %v lost its session", a)
		}
	}

	// Overdial: one agent (a2 paused), three calls for it; the recipients
	// stay on the line.
	if code, out := e.do(t, "POST", "/v1/dialer/agents/"+a2+":pause", e.key, `{"reason":"lunch"}`); code != 200 {
		t.Fatalf("pause: %d %v", code, out)
	}
	if code, out := e.do(t, "PATCH", "/v1/dialer/agents/"+a1, e.key, `{"campaignIds":["`+over+`"]}`); code != 200 {
		t.Fatalf("assign: %d %v", code, out)
	}
	if imp := e.importList(t, e.key, over, "Phone,Name\n5554000000,A\n5554010000,B\n5554020000,C\n"); dig(imp, "list", "records") != "3" {
		t.Fatalf("import: %v", imp)
	}
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns/"+over+":start", e.key, `{}`); code != 200 {
		t.Fatalf("start: %d %v", code, out)
	}
	onCall := e.agentState(t, a1, "AGENT_STATE_ON_CALL", 30*time.Second)
	var abandoned []map[string]any
	for deadline := time.Now().Add(30 * time.Second); len(abandoned) < 2 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+over+"/records?status=abandoned", e.key, "")
		abandoned = nil
		for _, r := range asList(recs["records"]) {
			abandoned = append(abandoned, r.(map[string]any))
		}
	}
	if len(abandoned) != 2 {
		t.Fatalf("abandoned records %v, want 2", abandoned)
	}
	for _, rec := range abandoned {
		call := e.waitFinal(t, dig(rec, "lastCallId"))
		if call["abandoned"] != true || dig(call, "status") != "CALL_STATUS_COMPLETED" || dig(call, "conference") != "" {
			t.Fatalf("abandoned call %v", call)
		}
		types := strings.Join(e.eventTypes(t, dig(call, "id")), ",")
		if !strings.Contains(types, "AGENT_AWAITED") || !strings.Contains(types, "CALL_ABANDONED") {
			t.Fatalf("abandoned call's events %s", types)
		}
	}
	// The connected call: the agent hangs up through the API, wraps up,
	// and is ready again.
	if code, out := e.do(t, "POST", "/v1/calls/"+dig(onCall, "callId")+":hangup", e.key, `{}`); code != 200 {
		t.Fatalf("hang up: %d %v", code, out)
	}
	e.agentState(t, a1, "AGENT_STATE_READY", 15*time.Second)
	c = e.waitCampaign(t, e.key, over, "CAMPAIGN_STATUS_FINISHED", 30*time.Second)
	ab := c["progress"].(map[string]any)["abandonment"].(map[string]any)
	if dig(ab, "answered24h") != "3" || dig(ab, "abandoned24h") != "2" {
		t.Fatalf("abandonment %v, want 2 of 3", ab)
	}
	_, rep := e.do(t, "GET", "/v1/dialer/campaigns/"+over+"/report", e.key, "")
	if dig(rep["abandonment"].(map[string]any), "abandoned30d") != "2" {
		t.Fatalf("report %v", rep)
	}
	// The abandoned numbers are locked out for the account: a new run
	// dials the answered one only.
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns/"+over+":start", e.key, `{}`); code != 200 {
		t.Fatalf("restart: %d %v", code, out)
	}
	for _, rec := range abandoned {
		number := fmt.Sprint(rec["numbers"].([]any)[0])
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			_, recs = e.do(t, "GET", "/v1/dialer/campaigns/"+over+"/records?status=ready", e.key, "")
			waiting := false
			for _, r := range asList(recs["records"]) {
				r := r.(map[string]any)
				if fmt.Sprint(r["numbers"].([]any)[0]) == number && dig(r, "tries") == "" && dig(r, "nextAttemptAt") > time.Now().Add(time.Hour).UTC().Format(time.RFC3339) {
					waiting = true
				}
			}
			if waiting {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not waiting for its lockout: %v", number, recs)
			}
		}
	}
	e.endAgents(t, over, a1, a2)
}

// The campaign's live call and the agents' sessions end; nothing is left
// for the shutdown to wait for.
func (e *e2e) endAgents(t *testing.T, campaign string, agents ...string) {
	t.Helper()
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns/"+campaign+":cancel", e.key, `{"hangupLiveCalls":true}`); code != 200 {
		t.Fatalf("cancel: %d %v", code, out)
	}
	for _, id := range agents {
		if code, out := e.do(t, "POST", "/v1/dialer/agents/"+id+":logout", e.key, `{}`); code != 200 {
			t.Fatalf("logout: %d %v", code, out)
		}
		a := e.agentState(t, id, "AGENT_STATE_LOGGED_OUT", 5*time.Second)
		if session := dig(a, "sessionCallId"); session != "" {
			t.Fatalf("logged out with a session %v", a)
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// A BLAST whose CONNECT option goes to the campaign's agents
// (on_answer.agent_queue), paced AGENTS (two dials per free agent), through
// the real services and the simulator: the first recipient to press 1 gets
// the free agent's room; the second, with
// the agent busy, waits in the queue (hold music) past the 2 s of a
// predictive answer and, past its wait, hears the no-agent message: the
// call ends FAILED NO_AGENT, the record failed, and nothing is counted
// abandoned.
func TestEndToEndBlastAgentQueue(t *testing.T) {
	e := start(t)
	const busy = "tone_stream://%(400,0,350)"
	campaign := func(name, options, queue string) (int, map[string]any) {
		return e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"`+name+`","defaultCountry":"US","dialAttempts":1,"maxConcurrentCalls":4,`+
			`"pacing":{"mode":"PACING_MODE_AGENTS","dialMultiplier":2},`+
			`"onAnswer":{"announcement":"tone_stream://%(20000,0,440)","optionTimeoutMs":5000,"detectMachine":true,"options":[`+options+`],`+
			`"agentQueue":`+queue+`},`+allDay+`}`)
	}
	connect := `{"digit":"1","action":"BLAST_ACTION_CONNECT"},{"digit":"9","action":"BLAST_ACTION_OPT_OUT"}`
	if code, out := campaign("No connect", `{"digit":"9","action":"BLAST_ACTION_OPT_OUT"}`, `{"noAgentMessage":"`+busy+`"}`); code != 400 ||
		!strings.Contains(dig(out, "error", "message"), "needs a CONNECT option") {
		t.Fatalf("a queue without CONNECT: %d %v", code, out)
	}
	if code, out := campaign("No message", connect, `{"waitS":5}`); code != 400 || !strings.Contains(dig(out, "error", "message"), "no_agent_message") {
		t.Fatalf("a queue without its message: %d %v", code, out)
	}
	code, out := campaign("Queue", connect, `{"waitS":4,"noAgentMessage":"`+busy+`"}`)
	if code != 200 || dig(out, "campaign", "onAnswer", "agentQueue", "waitS") != "4" {
		t.Fatalf("create: %d %v", code, out)
	}
	id := dig(out, "campaign", "id")
	agent := e.newAgent(t, "1001", 0, id)
	first, second := "+15557100000", "+15557110000"
	e.importAndStart(t, id, "Phone,Name\n5557100000,First\n5557110000,Second\n", 2)
	e.pressInMenu(t, id, first, "1")
	onCall := e.agentState(t, agent, "AGENT_STATE_ON_CALL", 30*time.Second)
	e.pressInMenu(t, id, second, "1")

	records := func() map[string]map[string]any {
		_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/records", e.key, "")
		out := map[string]map[string]any{}
		for _, r := range asList(recs["records"]) {
			rec := r.(map[string]any)
			out[fmt.Sprint(rec["numbers"].([]any)[0])] = rec
		}
		return out
	}
	var waited map[string]any
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if rec := records()[second]; dig(rec, "status") == "failed" {
			waited = e.waitFinal(t, dig(rec, "lastCallId"))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second recipient's record never failed: %v", records()[second])
		}
	}
	if dig(waited, "status") != "CALL_STATUS_FAILED" || dig(waited, "failedLeg") != "LEG_ROLE_SECOND" ||
		dig(waited, "failureReason") != "FAILURE_REASON_NO_AGENT" || waited["abandoned"] == true || dig(waited, "conference") != "" ||
		dig(waited, "menuChoice") != "MENU_ACTION_CONNECT" {
		t.Fatalf("the call no agent took: %v", waited)
	}
	types := strings.Join(e.eventTypes(t, dig(waited, "id")), ",")
	if !strings.Contains(types, "AGENT_AWAITED") || strings.Contains(types, "CALL_ABANDONED") {
		t.Fatalf("the call no agent took: events %s", types)
	}
	// It waited its 4 s, well past a predictive answer's 2, from its choice.
	awaited, ended := e.eventAt(dig(waited, "id"), "EVENT_TYPE_AGENT_AWAITED"), e.eventAt(dig(waited, "id"), "EVENT_TYPE_CALL_FAILED")
	if d := ended.Sub(awaited); d < 4*time.Second || d > 10*time.Second {
		t.Fatalf("waited %s for an agent, want 4 s and the message", d)
	}

	// The agent's call: in its room; hung up through the API, the agent is
	// ready again and the campaign ends with nothing abandoned.
	call := e.waitBridged(t, dig(onCall, "callId"))
	if dig(call, "conference") != "agent-"+agent || dig(call, "digits") != "1" {
		t.Fatalf("the agent's call: %v", call)
	}
	if code, out := e.do(t, "POST", "/v1/calls/"+dig(onCall, "callId")+":hangup", e.key, `{}`); code != 200 {
		t.Fatalf("hang up: %d %v", code, out)
	}
	e.agentState(t, agent, "AGENT_STATE_READY", 15*time.Second)
	c := e.waitCampaign(t, e.key, id, "CAMPAIGN_STATUS_FINISHED", 30*time.Second)
	if ab, _ := c["progress"].(map[string]any)["abandonment"].(map[string]any); ab != nil && dig(ab, "abandoned24h") != "" && dig(ab, "abandoned24h") != "0" {
		t.Fatalf("abandonment %v, want none", ab)
	}
	recs := records()
	rec := func(r map[string]any) string {
		return dig(r, "status") + " " + fmt.Sprint(r["tags"]) + " " + dig(r, "destination")
	}
	if got := rec(recs[first]) + ", " + rec(recs[second]); got != "answered [1] QUEUE_ANSWER, failed [1] QUEUE_TIMEOUT" {
		t.Fatalf("records: %s", got)
	}
	_, rep := e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/report", e.key, "")
	byDest, _ := rep["byDestination"].([]any)
	var rows []string
	for _, r := range byDest {
		rows = append(rows, dig(r.(map[string]any), "type")+"="+dig(r.(map[string]any), "total"))
	}
	if got := strings.Join(rows, " "); got != "QUEUE_ANSWER=1 QUEUE_TIMEOUT=1" {
		t.Fatalf("report by destination: %q (%v)", got, rep)
	}
}

// A queue that turns callers away when nobody is logged in: the recipient
// who presses 1 hears the message at once instead of waiting its 30 s, and
// the record says why (QUEUE_EMPTY).
func TestEndToEndBlastQueueTurnsAway(t *testing.T) {
	e := start(t)
	code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"Empty queue","defaultCountry":"US","dialAttempts":1,`+
		`"onAnswer":{"announcement":"tone_stream://%(20000,0,440)","optionTimeoutMs":5000,"detectMachine":true,`+
		`"options":[{"digit":"1","action":"BLAST_ACTION_CONNECT"}],`+
		`"agentQueue":{"waitS":30,"maxWaiting":5,"turnAwayWhenEmpty":true,"noAgentMessage":"tone_stream://%(400,0,350)"}},`+allDay+`}`)
	if code != 200 || dig(out, "campaign", "onAnswer", "agentQueue", "maxWaiting") != "5" {
		t.Fatalf("create: %d %v", code, out)
	}
	id := dig(out, "campaign", "id")
	const number = "+15557120000"
	e.importAndStart(t, id, "Phone\n5557120000\n", 1)
	e.pressInMenu(t, id, number, "1")
	e.waitCampaign(t, e.key, id, "CAMPAIGN_STATUS_FINISHED", 20*time.Second)
	_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/records?destination=QUEUE_EMPTY", e.key, "")
	list := asList(recs["records"])
	if len(list) != 1 || dig(list[0].(map[string]any), "status") != "failed" {
		t.Fatalf("records turned away: %v", recs)
	}
	call := e.waitFinal(t, dig(list[0].(map[string]any), "lastCallId"))
	if dig(call, "status") != "CALL_STATUS_FAILED" || dig(call, "failedLeg") != "LEG_ROLE_SECOND" ||
		dig(call, "failureReason") != "FAILURE_REASON_QUEUE_EMPTY" || dig(call, "menuChoice") != "MENU_ACTION_CONNECT" {
		t.Fatalf("the call turned away: %v", call)
	}
	// Turned away at the press, not after the 30 s wait.
	awaited, ended := e.eventAt(dig(call, "id"), "EVENT_TYPE_AGENT_AWAITED"), e.eventAt(dig(call, "id"), "EVENT_TYPE_CALL_FAILED")
	if awaited.IsZero() || ended.Sub(awaited) > 15*time.Second {
		t.Fatalf("waited %s (from %v) before being turned away, want the message at once", ended.Sub(awaited), awaited)
	}
}

// A queue whose callers leave when it is empty, through the real services:
// the second recipient waits while the only agent talks to the first; the
// agent pauses and its call ends, and the waiting recipient hears the
// message there and then (QUEUE_EMPTY), not after the queue's 60 s.
func TestEndToEndBlastQueueEmptiesWhenAgentsLeave(t *testing.T) {
	e := start(t)
	code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"Queue left empty","defaultCountry":"US","dialAttempts":1,"maxConcurrentCalls":4,`+
		`"pacing":{"mode":"PACING_MODE_AGENTS","dialMultiplier":2},`+
		`"onAnswer":{"announcement":"tone_stream://%(20000,0,440)","optionTimeoutMs":5000,"detectMachine":true,`+
		`"options":[{"digit":"1","action":"BLAST_ACTION_CONNECT"}],`+
		`"agentQueue":{"waitS":60,"turnAwayWhenEmpty":true,"noAgentMessage":"tone_stream://%(400,0,350)"}},`+allDay+`}`)
	if code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	id := dig(out, "campaign", "id")
	agent := e.newAgent(t, "1002", 0, id)
	const first, second = "+15557150000", "+15557160000"
	e.importAndStart(t, id, "Phone\n5557150000\n5557160000\n", 2)
	e.pressInMenu(t, id, first, "1")
	onCall := e.agentState(t, agent, "AGENT_STATE_ON_CALL", 30*time.Second)
	e.pressInMenu(t, id, second, "1")
	var waiting string
	for deadline := time.Now().Add(15 * time.Second); waiting == ""; time.Sleep(50 * time.Millisecond) {
		_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/records", e.key, "")
		for _, r := range asList(recs["records"]) {
			if rec := r.(map[string]any); strings.Contains(fmt.Sprint(rec["numbers"]), second) {
				if c := dig(rec, "lastCallId"); c != "" && !e.eventAt(c, "EVENT_TYPE_AGENT_AWAITED").IsZero() {
					waiting = c
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second recipient never waited for an agent: %v", recs)
		}
	}
	// The campaign's live view: one agent, on a call; one caller waiting.
	_, got := e.do(t, "GET", "/v1/dialer/campaigns/"+id, e.key, "")
	if p := dig(got, "campaign", "progress"); dig(got, "campaign", "progress", "agents", "loggedIn") != "1" ||
		dig(got, "campaign", "progress", "agents", "onCall") != "1" || dig(got, "campaign", "progress", "waiting") != "1" ||
		atoi(dig(got, "campaign", "progress", "longestWaitMs")) <= 0 {
		t.Fatalf("progress with a caller waiting: %v", p)
	}
	// A pause asked during the call leaves the agent in the queue until
	// the call ends; then the queue is empty.
	if code, out := e.do(t, "POST", "/v1/dialer/agents/"+agent+":pause", e.key, `{"reason":"lunch"}`); code != 200 ||
		dig(out, "agent", "pendingPauseReason") != "lunch" {
		t.Fatalf("pause: %d %v", code, out)
	}
	if code, out := e.do(t, "POST", "/v1/calls/"+dig(onCall, "callId")+":hangup", e.key, `{}`); code != 200 {
		t.Fatalf("hang up: %d %v", code, out)
	}
	e.agentState(t, agent, "AGENT_STATE_PAUSED", 15*time.Second)
	call := e.waitFinal(t, waiting)
	if dig(call, "status") != "CALL_STATUS_FAILED" || dig(call, "failedLeg") != "LEG_ROLE_SECOND" ||
		dig(call, "failureReason") != "FAILURE_REASON_QUEUE_EMPTY" || dig(call, "menuChoice") != "MENU_ACTION_CONNECT" {
		t.Fatalf("the waiting call: %v", call)
	}
	awaited, ended := e.eventAt(waiting, "EVENT_TYPE_AGENT_AWAITED"), e.eventAt(waiting, "EVENT_TYPE_CALL_FAILED")
	if ended.Sub(awaited) > 30*time.Second {
		t.Fatalf("waited %s before being turned away, want the message once the agent left, well before 60 s", ended.Sub(awaited))
	}
	e.waitCampaign(t, e.key, id, "CAMPAIGN_STATUS_FINISHED", 30*time.Second)
	_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/records?destination=QUEUE_EMPTY", e.key, "")
	if list := asList(recs["records"]); len(list) != 1 || !strings.Contains(fmt.Sprint(list[0].(map[string]any)["numbers"]), second) {
		t.Fatalf("records turned away: %v", recs)
	}
}

// atoi is s as an int (0 if it is not one).
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// importAndStart imports csv into campaign id, wanting n records, and
// starts the campaign.
func (e *e2e) importAndStart(t *testing.T, id, csv string, n int) {
	t.Helper()
	if imp := e.importList(t, e.key, id, csv); dig(imp, "list", "records") != strconv.Itoa(n) {
		t.Fatalf("import: %v", imp)
	}
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns/"+id+":start", e.key, `{}`); code != 200 {
		t.Fatalf("start: %d %v", code, out)
	}
}

// eventAt is when the call's last event of that type occurred, as received
// (zero: none yet).
func (e *e2e) eventAt(callID, typ string) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	var at time.Time
	for _, ev := range e.events[callID] {
		if ev.GetType().String() == typ {
			at = ev.GetOccurredAt().AsTime()
		}
	}
	return at
}

// waitBridged polls a call until it is bridged.
func (e *e2e) waitBridged(t *testing.T, id string) map[string]any {
	t.Helper()
	var c map[string]any
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, out := e.do(t, "GET", "/v1/calls/"+id, e.key, "")
		if c, _ = out["call"].(map[string]any); dig(c, "status") == "CALL_STATUS_BRIDGED" {
			return c
		}
	}
	t.Fatalf("call %s never bridged: %v", id, c)
	return nil
}
