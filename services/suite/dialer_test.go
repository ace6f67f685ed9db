package suite

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The seed's example list (shared/seeds 003), numbers national to Brazil.
const seedList = "TelNumber,FullName,CustomerCode\r\n" +
	"2132458767|2145602412,Henry Case,0023\r\n" +
	"1140637865|1156984628|1146120456,Peter Riviera,0156\r\n" +
	"5198776500,Sally Shears,3278\r\n" +
	"2144786045,Willis Corto,0009\r\n"

// allDay makes a test independent of the hour it runs at.
const allDay = `"callingHours":{"windows":[{"days":[0,1,2,3,4,5,6],"start":"00:00","end":"24:00"}]}`

func (e *e2e) importList(t testing.TB, key, campaign, csv string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", e.info.HTTPURL+"/v1/dialer/campaigns/"+campaign+"/lists?name=seed", strings.NewReader(csv))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.StatusCode != 200 || jsonUnmarshal(body, &out) != nil {
		t.Fatalf("import: %d %s", resp.StatusCode, body)
	}
	return out
}

func (e *e2e) waitCampaign(t *testing.T, key, id, status string, within time.Duration) map[string]any {
	t.Helper()
	var c map[string]any
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		code, out := e.do(t, "GET", "/v1/dialer/campaigns/"+id, key, "")
		if code != 200 {
			t.Fatalf("campaign: %d %v", code, out)
		}
		if c = out["campaign"].(map[string]any); dig(c, "status") == status {
			return c
		}
	}
	t.Fatalf("campaign %s never %s: %v", id, status, c)
	return nil
}

// The contract: a campaign created with a name and a default
// country, the seed's list imported as text/csv, started, FINISHED once
// every record is final, and its report by final status.
func TestEndToEndDialerContract(t *testing.T) {
	e := start(t)
	// Exactly the contract's body: the calling hours are the development
	// default (any hour), as under `make run`.
	code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"Seed","default_country":"BR"}`)
	if code != 200 || dig(out, "campaign", "id") == "" || dig(out, "campaign", "status") != "CAMPAIGN_STATUS_CREATED" {
		t.Fatalf("create: %d %v", code, out)
	}
	id := dig(out, "campaign", "id")
	imp := e.importList(t, e.key, id, seedList)
	if dig(imp, "list", "records") != "4" || dig(imp, "errorCount") != "" {
		t.Fatalf("import: %v", imp)
	}
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns/"+id+":start", e.key, `{}`); code != 200 || dig(out, "campaign", "status") != "CAMPAIGN_STATUS_RUNNING" {
		t.Fatalf("start: %d %v", code, out)
	}
	c := e.waitCampaign(t, e.key, id, "CAMPAIGN_STATUS_FINISHED", 60*time.Second)
	if dig(c, "progress", "records") != "4" || dig(c, "progress", "final") != "4" {
		t.Fatalf("finished campaign: %v", c)
	}
	code, rep := e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/report", e.key, "")
	if code != 200 {
		t.Fatalf("report: %d %v", code, rep)
	}
	rows, _ := rep["byStatus"].([]any)
	if len(rows) != 1 || dig(rows[0].(map[string]any), "type") != "answered" || dig(rows[0].(map[string]any), "total") != "4" {
		t.Fatalf("report by status: %v", rep)
	}
	// Every record was called once, at its first number, with its columns
	// as the call's variables.
	_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/records", e.key, "")
	list, _ := recs["records"].([]any)
	if len(list) != 4 {
		t.Fatalf("records: %v", recs)
	}
	first := list[0].(map[string]any)
	call := e.waitFinal(t, dig(first, "lastCallId"))
	if dig(first, "tries") != "1" || dig(call, "first", "party", "number") != "+552132458767" || dig(call, "source") != "CALL_SOURCE_DIALER" ||
		dig(call, "variables", "FullName") != "Henry Case" || dig(call, "status") != "CALL_STATUS_COMPLETED" {
		t.Fatalf("record %v, call %v", first, call)
	}
	// Finished campaigns can be edited and run again.
	if code, out := e.do(t, "PATCH", "/v1/dialer/campaigns/"+id, e.key, `{"dialAttempts":2}`); code != 200 || dig(out, "campaign", "dialAttempts") != "2" {
		t.Fatalf("edit: %d %v", code, out)
	}
}

// Retries rotate over a record's numbers; a do-not-call number is never
// dialed; a list's bad rows are reported and the good ones dialed.
func TestEndToEndDialerRetriesAndDNC(t *testing.T) {
	e := start(t)
	code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"Retries","defaultCountry":"US","dialAttempts":3,`+
		`"retryIntervals":{"busyS":1},`+allDay+`}`)
	if code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	id := dig(out, "campaign", "id")
	if code, out := e.do(t, "POST", "/v1/dialer/do-not-call", e.key, `{"numbers":["+15551230777"],"campaignId":"`+id+`"}`); code != 200 {
		t.Fatalf("dnc: %d %v", code, out)
	}
	imp := e.importList(t, e.key, id, "Phone,Name\n"+
		"555 123 0486|555-123-0001,Busy then reached\n"+ // busy on the first number, answered on the second
		"5551230777,Opted out\n"+
		"not-a-number,Bad row\n")
	if dig(imp, "list", "records") != "2" || dig(imp, "errorCount") != "1" {
		t.Fatalf("import: %v", imp)
	}
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns/"+id+":start", e.key, `{}`); code != 200 {
		t.Fatalf("start: %d %v", code, out)
	}
	e.waitCampaign(t, e.key, id, "CAMPAIGN_STATUS_FINISHED", 60*time.Second)
	_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/records", e.key, "")
	list, _ := recs["records"].([]any)
	if len(list) != 2 {
		t.Fatalf("records: %v", recs)
	}
	reached, optedOut := list[0].(map[string]any), list[1].(map[string]any)
	if dig(reached, "status") != "answered" || dig(reached, "tries") != "2" {
		t.Fatalf("the busy record: %v", reached)
	}
	if call := e.waitFinal(t, dig(reached, "lastCallId")); dig(call, "first", "party", "number") != "+15551230001" {
		t.Fatalf("the second attempt dialed %s, want the record's second number", dig(call, "first", "party", "number"))
	}
	if dig(optedOut, "status") != "dnc" || dig(optedOut, "tries") != "" && dig(optedOut, "tries") != "0" {
		t.Fatalf("the do-not-call record: %v", optedOut)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// A BLAST through the suite and the switch: the announcement's options run
// in FreeSWITCH (play_and_get_digits), machine detection too (mod_amd).
// Two far ends that answer and stay up are pressed a digit through the
// simulator once detection said HUMAN: 1 (END) gives tag 1; 9 (OPT_OUT)
// gives tag 9 and puts the number on the account's do-not-call list. The
// 0666 one is a machine: answmachine, with no option read.
func TestEndToEndDialerBlast(t *testing.T) {
	e := start(t)
	code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, `{"name":"Blast","defaultCountry":"US","dialAttempts":1,`+
		`"onAnswer":{"announcement":"tone_stream://%(20000,0,350)","optionTimeoutMs":5000,"detectMachine":true,`+
		`"options":[{"digit":"1","action":"BLAST_ACTION_END"},{"digit":"9","action":"BLAST_ACTION_OPT_OUT"}]},`+allDay+`}`)
	if code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	id := dig(out, "campaign", "id")
	presses, optOut, machine := "+15552000000", "+15552010000", "+15552020666"
	if imp := e.importList(t, e.key, id, "Phone,Name\n5552000000,Presses one\n5552010000,Opts out\n5552020666,Machine\n"); dig(imp, "list", "records") != "3" {
		t.Fatalf("import: %v", imp)
	}
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns/"+id+":start", e.key, `{}`); code != 200 {
		t.Fatalf("start: %d %v", code, out)
	}
	e.pressInMenu(t, id, presses, "1")
	e.pressInMenu(t, id, optOut, "9")
	e.waitCampaign(t, e.key, id, "CAMPAIGN_STATUS_FINISHED", 60*time.Second)
	_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/records", e.key, "")
	got := map[string]string{}
	for _, r := range recs["records"].([]any) {
		rec := r.(map[string]any)
		got[fmt.Sprint(rec["numbers"])] = dig(rec, "status") + " " + fmt.Sprint(rec["tags"]) + " " + dig(rec, "destination")
	}
	want := map[string]string{"[" + presses + "]": "answered [1] IVR_FINISHED", "[" + optOut + "]": "answered [9] IVR_FINISHED",
		"[" + machine + "]": "answmachine <nil> "}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if code, out := e.do(t, "GET", "/v1/dialer/do-not-call/"+optOut, e.key, ""); code != 200 || fmt.Sprint(out["blocked"]) != "true" {
		t.Fatalf("do-not-call check of %s: %d %v", optOut, code, out)
	}
	if code, out := e.do(t, "GET", "/v1/dialer/do-not-call/"+presses, e.key, ""); code != 200 || fmt.Sprint(out["blocked"]) == "true" {
		t.Fatalf("do-not-call check of %s: %d %v", presses, code, out)
	}
	// The machine's call: failed MACHINE, never read an option.
	_, recs = e.do(t, "GET", "/v1/dialer/campaigns/"+id+"/records?status=answmachine", e.key, "")
	m := recs["records"].([]any)[0].(map[string]any)
	call := e.waitFinal(t, dig(m, "lastCallId"))
	if dig(call, "failureReason") != "FAILURE_REASON_MACHINE" || dig(call, "machineResult") != "MACHINE" || dig(call, "digits") != "" {
		t.Fatalf("machine's call %v", call)
	}
}

// pressInMenu presses digit on the call of the campaign's record for
// number once machine detection said HUMAN, again every 300 ms until the
// call took an option: a digit that reaches the leg between two dialplan
// extensions (parked) is dropped, as FreeSWITCH drops it.
func (e *e2e) pressInMenu(t *testing.T, campaign, number, digit string) {
	var callID string
	for deadline := time.Now().Add(30 * time.Second); callID == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%s was never dialed", number)
			return
		}
		_, recs := e.do(t, "GET", "/v1/dialer/campaigns/"+campaign+"/records", e.key, "")
		list, _ := recs["records"].([]any)
		for _, r := range list {
			if rec := r.(map[string]any); strings.Contains(fmt.Sprint(rec["numbers"]), number) {
				callID = dig(rec, "lastCallId")
			}
		}
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, c := e.do(t, "GET", "/v1/calls/"+callID, e.key, "")
		switch {
		case dig(c, "call", "menuChoice") != "" || strings.HasSuffix(dig(c, "call", "status"), "COMPLETED"):
			return
		case dig(c, "call", "machineResult") == "HUMAN":
			resp, err := http.Post(e.info.SimControlURL+"/channels/"+dig(c, "call", "first", "uuid")+"/dtmf", "application/json",
				strings.NewReader(`{"digits":"`+digit+`"}`))
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	t.Errorf("call %s of %s never took an option", callID, number)
}
