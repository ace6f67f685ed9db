package gateway

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"testing"
	"time"
)

func TestAccountsCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	op := testOperatorToken

	created := e.do(t, req{method: "POST", path: "/v1/accounts", key: op,
		body: `{"name":"acme-crm","ipAllowlist":["203.0.113.0/24","2001:db8::1"]}`})
	if created.status != http.StatusOK {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	id := created.str(t, "account.id")
	if id == "" || created.str(t, "account.name") != "acme-crm" || created.str(t, "account.status") != "ACCOUNT_STATUS_ACTIVE" {
		t.Fatalf("create: %s", created.body)
	}
	if got := created.path(t, "account.ipAllowlist"); len(got.([]any)) != 2 || got.([]any)[1] != "2001:db8::1/128" {
		t.Fatalf("allowlist %v", got)
	}
	for _, n := range []string{"beta", "gamma"} {
		if r := e.do(t, req{method: "POST", path: "/v1/accounts", key: op, body: `{"name":"` + n + `"}`}); r.status != 200 {
			t.Fatalf("create %s: %d %s", n, r.status, r.body)
		}
	}

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code                     string
		}{
			{"name taken, other case", "POST", "/v1/accounts", `{"name":"ACME-crm"}`, 409, ReasonNameTaken},
			{"bad name", "POST", "/v1/accounts", `{"name":"a b"}`, 400, ReasonInvalidArgument},
			{"short name", "POST", "/v1/accounts", `{"name":"ab"}`, 400, ReasonInvalidArgument},
			{"bad CIDR", "POST", "/v1/accounts", `{"name":"cidr-1","ipAllowlist":["300.1.1.1"]}`, 400, ReasonInvalidArgument},
			{"host bits", "POST", "/v1/accounts", `{"name":"cidr-2","ipAllowlist":["203.0.113.7/24"]}`, 400, ReasonInvalidArgument},
			{"unknown JSON field", "POST", "/v1/accounts", `{"name":"typo-1","nmae":"x"}`, 400, ReasonInvalidArgument},
			{"not found", "GET", "/v1/accounts/6f1c1c1e-2a6f-4d7c-9d1e-000000000000", "", 404, ReasonAccountNotFound},
			{"not a uuid", "GET", "/v1/accounts/nope", "", 404, ReasonAccountNotFound},
			{"update output-only", "PATCH", "/v1/accounts/" + id, `{"createdAt":"2020-01-01T00:00:00Z"}`, 400, ReasonInvalidArgument},
			{"page token", "GET", "/v1/accounts?page_token=!!", "", 400, ReasonInvalidArgument},
			{"revoke unknown key", "POST", "/v1/accounts/" + id + "/api-keys/6f1c1c1e-2a6f-4d7c-9d1e-000000000000:revoke", `{}`, 404, ReasonAPIKeyNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				e.do(t, req{method: tc.method, path: tc.path, key: op, body: tc.body}).wantError(t, tc.status, tc.code)
			})
		}
	})

	t.Run("get", func(t *testing.T) {
		t.Parallel()
		r := e.do(t, req{method: "GET", path: "/v1/accounts/" + id, key: op})
		if r.status != 200 || r.str(t, "account.id") != id || r.str(t, "account.createdAt") == "" {
			t.Fatalf("get: %d %s", r.status, r.body)
		}
	})

	t.Run("list pages by name", func(t *testing.T) {
		t.Parallel()
		var names []string
		token := ""
		for range 10 {
			path := "/v1/accounts?page_size=2"
			if token != "" {
				path += "&page_token=" + token
			}
			r := e.do(t, req{method: "GET", path: path, key: op})
			if r.status != 200 {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
			for _, a := range r.path(t, "accounts").([]any) {
				names = append(names, a.(map[string]any)["name"].(string))
			}
			if token = r.str(t, "nextPageToken"); token == "" {
				break
			}
		}
		if len(names) < 3 || names[0] != "acme-crm" || names[1] != "beta" || names[2] != "gamma" {
			t.Fatalf("names %v", names)
		}
	})

	t.Run("update", func(t *testing.T) {
		t.Parallel()
		upd, _ := e.store.CreateAccount(context.Background(), "to-update", "", nil)
		r := e.do(t, req{method: "PATCH", path: "/v1/accounts/" + upd.ID, key: op,
			body: `{"status":"ACCOUNT_STATUS_SUSPENDED","ipAllowlist":["198.51.100.0/24"]}`})
		if r.status != 200 || r.str(t, "account.status") != "ACCOUNT_STATUS_SUSPENDED" {
			t.Fatalf("update: %d %s", r.status, r.body)
		}
		// Only the fields in the body change: clearing the allowlist leaves the status.
		r = e.do(t, req{method: "PATCH", path: "/v1/accounts/" + upd.ID, key: op, body: `{"ipAllowlist":[]}`})
		if r.status != 200 || r.path(t, "account.ipAllowlist") != nil || r.str(t, "account.status") != "ACCOUNT_STATUS_SUSPENDED" {
			t.Fatalf("update: %d %s", r.status, r.body)
		}
		r = e.do(t, req{method: "PATCH", path: "/v1/accounts/" + upd.ID, key: op, body: `{"name":"beta"}`})
		r.wantError(t, 409, ReasonNameTaken)
	})
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	idA, keyA := e.newAccount(t, "account-a")
	idB, _ := e.newAccount(t, "account-b")
	ctx := context.Background()
	keysB, err := e.store.ListKeys(ctx, idB, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	keyBID := keysB[0].ID
	_, secretA2, _ := e.store.CreateKey(ctx, idA, "second")
	keysA, _ := e.store.ListKeys(ctx, idA, nil, 10)
	keyA2ID := keysA[0].ID // newest first
	_ = secretA2

	const (
		op   = "operator"
		ownK = "own key"
		none = "no key"
		bad  = "wrong key"
	)
	keys := map[string]string{op: testOperatorToken, ownK: keyA, none: "", bad: "rb_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}
	for _, tc := range []struct {
		who          string
		method, path string
		body         string
		status       int
		code         string
	}{
		{op, "GET", "/v1/accounts", "", 200, ""},
		{ownK, "GET", "/v1/accounts", "", 403, ReasonPermissionDenied},
		{none, "GET", "/v1/accounts", "", 401, ReasonUnauthenticated},
		{bad, "GET", "/v1/accounts", "", 401, ReasonUnauthenticated},
		{op, "POST", "/v1/accounts", `{"name":"by-operator"}`, 200, ""},
		{ownK, "POST", "/v1/accounts", `{"name":"by-key"}`, 403, ReasonPermissionDenied},
		{op, "GET", "/v1/accounts/" + idB, "", 200, ""},
		{ownK, "GET", "/v1/accounts/" + idA, "", 200, ""},
		{ownK, "GET", "/v1/accounts/me", "", 200, ""},
		{ownK, "GET", "/v1/accounts/" + idB, "", 403, ReasonPermissionDenied},
		{op, "GET", "/v1/accounts/me", "", 400, ReasonInvalidArgument},
		{ownK, "PATCH", "/v1/accounts/" + idA, `{"ipAllowlist":["0.0.0.0/0","::/0"]}`, 200, ""},
		{ownK, "PATCH", "/v1/accounts/" + idA, `{"status":"ACCOUNT_STATUS_SUSPENDED"}`, 403, ReasonPermissionDenied},
		{ownK, "PATCH", "/v1/accounts/" + idA, `{"name":"renamed"}`, 403, ReasonPermissionDenied},
		{ownK, "PATCH", "/v1/accounts/" + idB, `{"ipAllowlist":[]}`, 403, ReasonPermissionDenied},
		{op, "PATCH", "/v1/accounts/" + idB, `{"ipAllowlist":[]}`, 200, ""},
		{ownK, "GET", "/v1/accounts/" + idA + "/api-keys", "", 200, ""},
		{ownK, "GET", "/v1/accounts/" + idB + "/api-keys", "", 403, ReasonPermissionDenied},
		{op, "GET", "/v1/accounts/" + idB + "/api-keys", "", 200, ""},
		{ownK, "POST", "/v1/accounts/me/api-keys", `{"name":"mine"}`, 200, ""},
		{ownK, "POST", "/v1/accounts/" + idB + "/api-keys", `{"name":"theirs"}`, 403, ReasonPermissionDenied},
		{ownK, "POST", "/v1/accounts/" + idB + "/api-keys/" + keyBID + ":revoke", `{}`, 403, ReasonPermissionDenied},
		// Another account's key id under one's own account is simply not there.
		{ownK, "POST", "/v1/accounts/" + idA + "/api-keys/" + keyBID + ":revoke", `{}`, 404, ReasonAPIKeyNotFound},
		{ownK, "POST", "/v1/accounts/" + idA + "/api-keys/" + keyA2ID + ":revoke", `{}`, 200, ""},
		// The operator manages accounts; calls need an account's key.
		{op, "POST", "/v1/calls", `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`, 403, ReasonPermissionDenied},
		{none, "POST", "/v1/calls", `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`, 401, ReasonUnauthenticated},
		{bad, "GET", "/v1/endpoints", "", 401, ReasonUnauthenticated},
		{ownK, "GET", "/v1/endpoints", "", 200, ""},
	} {
		t.Run(tc.who+" "+tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			r := e.do(t, req{method: tc.method, path: tc.path, key: keys[tc.who], body: tc.body})
			if tc.code != "" {
				r.wantError(t, tc.status, tc.code)
				return
			}
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}

	t.Run("suspended account", func(t *testing.T) {
		t.Parallel()
		id, key := e.newAccount(t, "suspended-co")
		st := StatusSuspended
		if _, err := e.store.UpdateAccount(ctx, id, AccountUpdate{Status: &st}); err != nil {
			t.Fatal(err)
		}
		e.do(t, req{method: "GET", path: "/v1/accounts/me", key: key}).wantError(t, 403, ReasonAccountSuspended)
		e.do(t, req{method: "GET", path: "/v1/calls/x", key: key}).wantError(t, 403, ReasonAccountSuspended)
	})
}

var keyFormat = regexp.MustCompile(`^rb_([a-z2-7]{8})_[a-z2-7]{32}$`)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, key := e.newAccount(t, "keys-co")

	created := e.do(t, req{method: "POST", path: "/v1/accounts/" + id + "/api-keys", key: key, body: `{"name":"CRM production"}`})
	if created.status != 200 {
		t.Fatalf("create key: %d %s", created.status, created.body)
	}
	secret := created.str(t, "secret")
	m := keyFormat.FindStringSubmatch(secret)
	if m == nil {
		t.Fatalf("secret %q does not look like rb_<prefix>_<random>", secret)
	}
	keyID := created.str(t, "apiKey.id")
	if created.str(t, "apiKey.prefix") != m[1] || created.str(t, "apiKey.name") != "CRM production" || created.str(t, "apiKey.accountId") != id {
		t.Fatalf("key: %s", created.body)
	}

	// The new key works, and no listing ever shows a secret.
	if r := e.do(t, req{method: "GET", path: "/v1/accounts/me", key: secret}); r.status != 200 {
		t.Fatalf("new key: %d %s", r.status, r.body)
	}
	list := e.do(t, req{method: "GET", path: "/v1/accounts/me/api-keys", key: secret})
	if list.status != 200 || regexp.MustCompile(`rb_[a-z2-7]{8}_`).Match(list.body) {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	keys := list.path(t, "apiKeys").([]any)
	if len(keys) != 2 || keys[0].(map[string]any)["id"] != keyID {
		t.Fatalf("want 2 keys, newest first: %s", list.body)
	}

	revoked := e.do(t, req{method: "POST", path: "/v1/accounts/me/api-keys/" + keyID + ":revoke", key: key, body: `{}`})
	if revoked.status != 200 || revoked.str(t, "apiKey.revokedAt") == "" {
		t.Fatalf("revoke: %d %s", revoked.status, revoked.body)
	}
	// Revoked keys stop at once, even though the lookup was cached.
	e.do(t, req{method: "GET", path: "/v1/accounts/me", key: secret}).wantError(t, 401, ReasonUnauthenticated)
	e.do(t, req{method: "GET", path: "/v1/calls/x", key: secret}).wantError(t, 401, ReasonUnauthenticated)
	again := e.do(t, req{method: "POST", path: "/v1/accounts/me/api-keys/" + keyID + ":revoke", key: key, body: `{}`})
	if again.str(t, "apiKey.revokedAt") != revoked.str(t, "apiKey.revokedAt") {
		t.Fatalf("revoking twice changed revokedAt: %s vs %s", again.body, revoked.body)
	}

	// Pages of one key each walk through all of them.
	var ids []string
	token := ""
	for range 5 {
		path := "/v1/accounts/me/api-keys?page_size=1"
		if token != "" {
			path += "&page_token=" + token
		}
		r := e.do(t, req{method: "GET", path: path, key: key})
		for _, k := range r.path(t, "apiKeys").([]any) {
			ids = append(ids, k.(map[string]any)["id"].(string))
		}
		if token = r.str(t, "nextPageToken"); token == "" {
			break
		}
	}
	if len(ids) != 2 || ids[0] != keyID {
		t.Fatalf("paged ids %v", ids)
	}
}

func TestLastUsedAt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, key := e.newAccount(t, "used-co")
	for range 3 {
		if r := e.do(t, req{method: "GET", path: "/v1/accounts/me", key: key}); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	e.store.Close() // waits for the background write
	keys, err := e.store.ListKeys(context.Background(), id, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if used := keys[0].LastUsedAt; used.IsZero() || time.Since(used) > time.Minute {
		t.Fatalf("last_used_at %v", used)
	}
}

func TestEnsureAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()

	id, secret, err := e.store.EnsureAccount(ctx, "dev", "k")
	if err != nil || secret != "k" {
		t.Fatalf("EnsureAccount: %q %q %v", id, secret, err)
	}
	id2, secret2, err := e.store.EnsureAccount(ctx, "dev", "k")
	if err != nil || id2 != id || secret2 != "k" {
		t.Fatalf("second EnsureAccount: %q %q %v", id2, secret2, err)
	}
	keys, _ := e.store.ListKeys(ctx, id, nil, 10)
	if len(keys) != 1 || keys[0].Prefix != "" {
		t.Fatalf("keys %+v (a one-character key must not be shown)", keys)
	}
	if r := e.do(t, req{method: "POST", path: "/v1/calls", key: "k",
		body: `{"first":{"number":"+15551230001"},"second":{"number":"+15551230002"}}`}); r.status != 200 {
		t.Fatalf("dev key: %d %s", r.status, r.body)
	}

	t.Run("revoked key comes back", func(t *testing.T) {
		if _, err := e.store.RevokeKey(ctx, id, keys[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Authenticate(ctx, "k"); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("revoked key authenticated: %v", err)
		}
		if _, _, err := e.store.EnsureAccount(ctx, "dev", "k"); err != nil {
			t.Fatal(err)
		}
		if p, err := e.store.Authenticate(ctx, "k"); err != nil || p.AccountID != id {
			t.Fatalf("Authenticate: %+v %v", p, err)
		}
	})
	t.Run("no key makes one", func(t *testing.T) {
		id3, s3, err := e.store.EnsureAccount(ctx, "dev", "")
		if err != nil || id3 != id || !keyFormat.MatchString(s3) {
			t.Fatalf("EnsureAccount: %q %q %v", id3, s3, err)
		}
		if p, err := e.store.Authenticate(ctx, s3); err != nil || p.AccountID != id {
			t.Fatalf("Authenticate: %+v %v", p, err)
		}
	})
	t.Run("another account's key", func(t *testing.T) {
		if _, _, err := e.store.EnsureAccount(ctx, "other-dev", "k"); !errors.Is(err, ErrKeyTaken) {
			t.Fatalf("err %v, want ErrKeyTaken", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct{ name, key string }{{"x", ""}, {"dev", "has space"}} {
			if _, _, err := e.store.EnsureAccount(ctx, tc.name, tc.key); !errors.Is(err, ErrInvalid) {
				t.Errorf("EnsureAccount(%q, %q): %v, want ErrInvalid", tc.name, tc.key, err)
			}
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				_, _, err := e.store.EnsureAccount(ctx, "racy", "racy-key-123")
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	})
}
