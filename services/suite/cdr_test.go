package suite

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// waitCdr polls GET /v1/cdrs/{id} until the call's record is queryable.
func (e *e2e) waitCdr(t *testing.T, key, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		code, out := e.do(t, "GET", "/v1/cdrs/"+id, key, "")
		if code == 200 {
			return out["cdr"].(map[string]any)
		}
		if code != 404 {
			t.Fatalf("GET /v1/cdrs/%s: %d %v", id, code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no record of call %s", id)
	return nil
}

// getCdrs calls the carrier-compatible endpoint.
func (e *e2e) getCdrs(t *testing.T, q url.Values) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(e.info.HTTPURL + "/getCdrs.php?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// The contract: after a completed call through POST /v1/calls,
// GET /v1/cdrs returns its record with both legs, duration and cost, and
// getCdrs with recent=1 returns it with the carrier's field names. Failed
// calls have records too; another account sees none of them anywhere.
func TestEndToEndCdrs(t *testing.T) {
	e := start(t)

	// The completed call talks 4-6 s once bridged (…0003), so it bills
	// whole seconds however late a loaded machine bridges it.
	completed := e.createCall(t, `{"first":{"number":"+15551230001"},"second":{"number":"+15551230003"},"variables":{"crm":"42"}}`)
	busy := e.createCall(t, `{"first":{"number":"+15551230486"},"second":{"number":"+15551230002"}}`)
	noAnswer := e.createCall(t, `{"first":{"number":"+15551230000"},"second":{"number":"+15551230408","ringTimeoutMs":2000}}`)
	canceled := e.createCall(t, `{"first":{"number":"+15551230000"},"second":{"number":"+15551230408","ringTimeoutMs":60000}}`)
	e.waitStatus(t, canceled, "CALL_STATUS_ANSWERED")
	if code, out := e.do(t, "POST", "/v1/calls/"+canceled+":hangup", e.key, `{}`); code != 200 {
		t.Fatalf("hangup: %d %v", code, out)
	}
	for _, id := range []string{completed, busy, noAnswer, canceled} {
		e.waitFinal(t, id)
	}

	rec := e.waitCdr(t, e.key, completed)
	if dig(rec, "call", "status") != "CALL_STATUS_COMPLETED" || dig(rec, "call", "first", "address") != "+15551230001" ||
		dig(rec, "call", "second", "address") != "+15551230003" || dig(rec, "call", "variables", "crm") != "42" {
		t.Fatalf("completed record: %v", rec)
	}
	if dig(rec, "call", "billsec") == "" || dig(rec, "call", "durationS") == "" || dig(rec, "costMicros") == "" ||
		dig(rec, "currency") != "USD" || dig(rec, "call", "first", "rate", "prefix") == "" {
		t.Fatalf("completed record lacks duration, cost or rate: %v", rec)
	}
	if tl, _ := rec["timeline"].([]any); len(tl) < 8 {
		t.Fatalf("timeline of a completed call: %v", rec["timeline"])
	}
	for id, reason := range map[string]string{busy: "FAILURE_REASON_BUSY", noAnswer: "FAILURE_REASON_NO_ANSWER"} {
		r := e.waitCdr(t, e.key, id)
		if dig(r, "call", "status") != "CALL_STATUS_FAILED" || dig(r, "call", "failureReason") != reason {
			t.Fatalf("failed call %s: %v", id, r)
		}
	}

	if r := e.waitCdr(t, e.key, canceled); dig(r, "call", "status") != "CALL_STATUS_CANCELED" {
		t.Fatalf("canceled call: %v", r)
	}

	t.Run("exactly one record per call", func(t *testing.T) {
		code, out := e.do(t, "GET", "/v1/cdrs?pageSize=1000", e.key, "")
		if code != 200 {
			t.Fatalf("GET /v1/cdrs: %d %v", code, out)
		}
		seen := map[string]int{}
		for _, c := range out["cdrs"].([]any) {
			seen[dig(c.(map[string]any), "call", "id")]++
		}
		if len(seen) != 4 || seen[completed] != 1 || seen[busy] != 1 || seen[noAnswer] != 1 || seen[canceled] != 1 {
			t.Fatalf("records per call: %v", seen)
		}
	})

	t.Run("list with filters", func(t *testing.T) {
		code, out := e.do(t, "GET", "/v1/cdrs?filter.statuses=CALL_STATUS_FAILED&pageSize=10", e.key, "")
		if code != 200 {
			t.Fatalf("GET /v1/cdrs: %d %v", code, out)
		}
		var got []string
		for _, c := range out["cdrs"].([]any) {
			got = append(got, dig(c.(map[string]any), "call", "id"))
		}
		if len(got) != 2 || !slices.Contains(got, busy) || !slices.Contains(got, noAnswer) {
			t.Fatalf("failed calls listed: %v", got)
		}
		code, out = e.do(t, "GET", "/v1/cdrs?filter.startTime=2026-01-02T00:00:00Z&filter.endTime=2026-01-01T00:00:00Z", e.key, "")
		if code != 400 || dig(out, "error", "code") != "INVALID_RANGE" {
			t.Fatalf("inverted range: %d %v", code, out)
		}
	})

	t.Run("comments and statistics over REST", func(t *testing.T) {
		code, out := e.do(t, "POST", "/v1/comment-types", e.key,
			`{"name":"Outcome","fields":[{"name":"result","kind":"COMMENT_FIELD_KIND_CHOICE","choices":["sale","no sale"],"required":true},{"name":"amount","kind":"COMMENT_FIELD_KIND_NUMBER"}]}`)
		if code != 200 {
			t.Fatalf("create comment type: %d %v", code, out)
		}
		typeID := dig(out, "commentType", "id")
		code, out = e.do(t, "POST", "/v1/cdrs/"+completed+"/comments", e.key, `{"typeId":"`+typeID+`","values":{"result":"sale","amount":120.5},"author":"maria"}`)
		if code != 200 {
			t.Fatalf("add comment: %d %v", code, out)
		}
		code, out = e.do(t, "POST", "/v1/cdrs/"+completed+"/comments", e.key, `{"typeId":"`+typeID+`","values":{"result":"maybe"}}`)
		if code != 400 || dig(out, "error", "code") != "INVALID_COMMENT" {
			t.Fatalf("a value not among the choices: %d %v", code, out)
		}
		rec := e.waitCdr(t, e.key, completed)
		if cs, _ := rec["comments"].([]any); len(cs) != 1 || dig(cs[0].(map[string]any), "values", "result") != "sale" {
			t.Fatalf("record's comments: %v", rec["comments"])
		}
		code, out = e.do(t, "GET", "/v1/statistics?period=PERIOD_DAY&timeZone=America/Mexico_City", e.key, "")
		if code != 200 {
			t.Fatalf("statistics: %d %v", code, out)
		}
		want := map[string]string{"calls": "4", "completed": "1", "failed": "2", "failedFirst": "1", "failedSecond": "1", "canceled": "1"}
		for k, v := range want {
			if got := dig(out, "total", k); got != v {
				t.Errorf("total %s = %s, want %s (%v)", k, got, v, out["total"])
			}
		}
		if dig(out, "total", "failuresByReason", "BUSY") != "1" || dig(out, "total", "failuresByReason", "NO_ANSWER") != "1" {
			t.Errorf("failures by reason: %v", out["total"])
		}
		code, out = e.do(t, "GET", "/v1/statistics:today", e.key, "")
		// Right after midnight UTC the calls may belong to yesterday.
		if now := time.Now().UTC(); code != 200 || (dig(out, "today", "calls") != "4" && now.Hour()*60+now.Minute() > 2) {
			t.Fatalf("today: %d %v", code, out)
		}
	})

	t.Run("getCdrs recent=1 with the carrier's fields", func(t *testing.T) {
		code, _, body := e.getCdrs(t, url.Values{"username": {"e2e"}, "password": {e.key}, "recent": {"1"}})
		if code != 200 {
			t.Fatalf("getCdrs: %d %s", code, body)
		}
		var recs []map[string]any
		if err := json.Unmarshal(body, &recs); err != nil {
			t.Fatalf("getCdrs body: %v: %s", err, body)
		}
		byID := map[string]map[string]any{}
		for _, r := range recs {
			keys := make([]string, 0, len(r))
			for k, v := range r {
				keys = append(keys, k)
				if _, ok := v.(string); !ok {
					t.Errorf("field %s is %T, want a string", k, v)
				}
			}
			slices.Sort(keys)
			if want := []string{"access_fee", "ani", "ani_user", "callid", "connect_time", "cost", "detect_time", "dnis",
				"dnis_user", "duration", "rate", "route_name", "route_pattern"}; !slices.Equal(keys, want) {
				t.Fatalf("fields %v, want %v", keys, want)
			}
			byID[dig(r, "callid")] = r
		}
		c := byID[completed]
		if c == nil || dig(c, "ani") != "+15551230001" || dig(c, "dnis") != "+15551230003" || dig(c, "connect_time") == "1970-01-01 00:00:00" ||
			dig(c, "cost") == "0" || dig(c, "route_pattern") == "" || dig(c, "duration") == "0" {
			t.Fatalf("completed call in getCdrs: %v", c)
		}
		if _, err := time.Parse("2006-01-02 15:04:05", dig(c, "detect_time")); err != nil {
			t.Errorf("detect_time %q: %v", dig(c, "detect_time"), err)
		}
		if b := byID[busy]; b == nil || dig(b, "connect_time") != "1970-01-01 00:00:00" || dig(b, "duration") != "0" {
			t.Fatalf("busy call in getCdrs: %v", b)
		}
	})

	t.Run("getCdrs by date with ini and cant", func(t *testing.T) {
		now := time.Now().UTC()
		q := url.Values{"username": {"e2e"}, "password": {e.key}, "dateStart": {now.Add(-time.Hour).Format("2006-01-02 15:04:05")},
			"dateEnd": {now.Add(time.Minute).Format("2006-01-02 15:04:05")}, "ini": {"1"}, "cant": {"1"}}
		code, _, body := e.getCdrs(t, q)
		var recs []map[string]any
		if code != 200 || json.Unmarshal(body, &recs) != nil || len(recs) != 1 || dig(recs[0], "callid") != busy {
			t.Fatalf("second record by date (oldest first: completed, busy, noAnswer): %d %s", code, body)
		}
		q.Set("dateStart", "yesterday")
		if code, _, body := e.getCdrs(t, q); code != 400 || !strings.Contains(string(body), "INVALID_DATE") {
			t.Fatalf("bad date: %d %s", code, body)
		}
	})

	t.Run("CSV export", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.info.HTTPURL+"/v1/cdrs:export?timeZone=America/Mexico_City", nil)
		req.Header.Set("Authorization", "Bearer "+e.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rows, err := csv.NewReader(resp.Body).ReadAll()
		if resp.StatusCode != 200 || err != nil || len(rows) != 5 || rows[0][0] != "call_id" {
			t.Fatalf("export: %d %v %v", resp.StatusCode, err, rows)
		}
	})

	t.Run("another account sees nothing", func(t *testing.T) {
		_, other := e.newAccount(t, "e2e-other")
		if code, out := e.do(t, "GET", "/v1/cdrs/"+completed, other, ""); code != 404 {
			t.Fatalf("other account reading the record: %d %v", code, out)
		}
		if code, out := e.do(t, "GET", "/v1/cdrs", other, ""); code != 200 || out["cdrs"] != nil {
			t.Fatalf("other account listing: %d %v", code, out)
		}
		if code, _, body := e.getCdrs(t, url.Values{"username": {"e2e-other"}, "password": {other}, "recent": {"1"}}); code != 200 || strings.TrimSpace(string(body)) != "[]" {
			t.Fatalf("other account's getCdrs: %d %s", code, body)
		}
		if code, _, body := e.getCdrs(t, url.Values{"username": {"e2e"}, "password": {other}, "recent": {"1"}}); code != 401 {
			t.Fatalf("another account's key with e2e's name: %d %s", code, body)
		}
		req, _ := http.NewRequest("GET", e.info.HTTPURL+"/v1/cdrs:export", nil)
		req.Header.Set("Authorization", "Bearer "+other)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		if len(rows) != 1 {
			t.Fatalf("other account's export has %d rows", len(rows))
		}
	})

	t.Run("getCdrs rate limit: 429 with Retry-After", func(t *testing.T) {
		q := url.Values{"username": {"e2e"}, "password": {e.key}, "live": {"1"}}
		var code int
		var h http.Header
		var body []byte
		for range 10 {
			if code, h, body = e.getCdrs(t, q); code == 429 {
				break
			}
			if code != 200 || !strings.HasPrefix(string(body), "[") {
				t.Fatalf("live: %d %s", code, body)
			}
		}
		if code != 429 || h.Get("Retry-After") == "" || !strings.Contains(string(body), "RATE_LIMITED") {
			t.Fatalf("past the burst: %d %v %s", code, h, body)
		}
	})
}
