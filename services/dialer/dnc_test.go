package dialer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
)

func TestDoNotCallScopes(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	ctx := callerCtx(context.Background(), "acc-a")
	br := e.campaign(t, "acc-a", "BR", dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING, 1)
	us := e.campaign(t, "acc-a", "US", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	c := e.client

	// The account's list takes E.164 only; duplicates count once.
	add, err := c.AddDoNotCall(ctx, &dialerv1.AddDoNotCallRequest{Numbers: []string{"+55 21 3245-8767", "+552132458767", "+14155550100"}, Reason: "asked"})
	if err != nil || add.GetAdded() != 2 {
		t.Fatalf("add to the account's list: %v %v", add, err)
	}
	// A campaign's list reads national numbers with its country.
	add, err = c.AddDoNotCall(ctx, &dialerv1.AddDoNotCallRequest{CampaignId: br, Numbers: []string{"(11) 4063-7865", "2132458767"}})
	if err != nil || add.GetAdded() != 2 {
		t.Fatalf("add to the campaign's list: %v %v", add, err)
	}
	// Again: nothing new.
	add, err = c.AddDoNotCall(ctx, &dialerv1.AddDoNotCallRequest{CampaignId: br, Numbers: []string{"+551140637865"}})
	if err != nil || add.GetAdded() != 0 {
		t.Fatalf("add again: %v %v", add, err)
	}

	check := func(number, campaign string) (bool, string) {
		t.Helper()
		r, err := c.CheckDoNotCall(ctx, &dialerv1.CheckDoNotCallRequest{Number: number, CampaignId: campaign})
		if err != nil {
			t.Fatalf("check %s in %q: %v", number, campaign, err)
		}
		return r.GetBlocked(), r.GetList()
	}
	for _, tt := range []struct {
		number, campaign string
		blocked          bool
		list             string
	}{
		{"+552132458767", "", true, "account"},
		{"2132458767", br, true, "account"}, // on both lists: the account's is named
		{"1140637865", br, true, br},
		{"+551140637865", "", false, ""}, // the campaign's list binds it alone
		{"+551140637865", us, false, ""},
		{"(415) 555-0100", us, true, "account"},
		{"+14155550199", us, false, ""},
	} {
		if blocked, list := check(tt.number, tt.campaign); blocked != tt.blocked || list != tt.list {
			t.Errorf("check %s in %q: blocked %v by %q, want %v by %q", tt.number, tt.campaign, blocked, list, tt.blocked, tt.list)
		}
	}

	// The engine's view.
	got, err := BlockedNumbers(context.Background(), e.db, "acc-a", br, []string{"+552132458767", "+551140637865", "+14155550100", "+14155550199"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"+552132458767": true, "+551140637865": true, "+14155550100": true}; !maps.Equal(got, want) {
		t.Fatalf("BlockedNumbers = %v, want %v", got, want)
	}
	got, err = BlockedNumbers(context.Background(), e.db, "acc-b", br, []string{"+552132458767"})
	if err != nil || len(got) != 0 {
		t.Fatalf("another account's numbers: %v %v", got, err)
	}

	// Remove from the campaign's list: the account's list still blocks.
	rm, err := c.RemoveDoNotCall(ctx, &dialerv1.RemoveDoNotCallRequest{CampaignId: br, Numbers: []string{"2132458767", "1140637865", "1156984628"}})
	if err != nil || rm.GetRemoved() != 2 {
		t.Fatalf("remove: %v %v", rm, err)
	}
	if blocked, list := check("2132458767", br); !blocked || list != "account" {
		t.Fatalf("after remove: %v %q", blocked, list)
	}
	if blocked, _ := check("1140637865", br); blocked {
		t.Fatal("still blocked after remove")
	}
}

func TestDoNotCallRefused(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	ctx := callerCtx(context.Background(), "acc-a")
	camp := e.campaign(t, "acc-a", "BR", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	c := e.client
	tooMany := slices.Repeat([]string{"+14155550100"}, MaxDoNotCallNumbers+1)

	_, err := c.AddDoNotCall(ctx, &dialerv1.AddDoNotCallRequest{Numbers: []string{"+14155550100", "2132458767", "abc"}})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	if msg := err.Error(); !strings.Contains(msg, `"abc"`) || !strings.Contains(msg, "2 invalid") || strings.Contains(msg, "+14155550100") {
		t.Fatalf("message names the wrong numbers: %s", msg)
	}
	for _, tt := range []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
	}{
		{"no numbers", func() error {
			_, err := c.AddDoNotCall(ctx, &dialerv1.AddDoNotCallRequest{})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"too many numbers", func() error {
			_, err := c.AddDoNotCall(ctx, &dialerv1.AddDoNotCallRequest{Numbers: tooMany})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"another account's campaign", func() error {
			_, err := c.AddDoNotCall(callerCtx(context.Background(), "acc-b"), &dialerv1.AddDoNotCallRequest{CampaignId: camp, Numbers: []string{"+14155550100"}})
			return err
		}, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"check in another account's campaign", func() error {
			_, err := c.CheckDoNotCall(callerCtx(context.Background(), "acc-b"), &dialerv1.CheckDoNotCallRequest{CampaignId: camp, Number: "+14155550100"})
			return err
		}, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"list another account's campaign", func() error {
			_, err := c.ListDoNotCall(callerCtx(context.Background(), "acc-b"), &dialerv1.ListDoNotCallRequest{CampaignId: camp})
			return err
		}, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"check a bad number", func() error {
			_, err := c.CheckDoNotCall(ctx, &dialerv1.CheckDoNotCallRequest{Number: "12"})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"remove a bad number", func() error {
			_, err := c.RemoveDoNotCall(ctx, &dialerv1.RemoveDoNotCallRequest{Numbers: []string{"x"}})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"bad page token", func() error {
			_, err := c.ListDoNotCall(ctx, &dialerv1.ListDoNotCallRequest{PageToken: "!!"})
			return err
		}, codes.InvalidArgument, "INVALID_PAGE_TOKEN"},
		{"page too large", func() error {
			_, err := c.ListDoNotCall(ctx, &dialerv1.ListDoNotCallRequest{PageSize: 1001})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"no account", func() error {
			_, err := c.CheckDoNotCall(context.Background(), &dialerv1.CheckDoNotCallRequest{Number: "+14155550100"})
			return err
		}, codes.Unauthenticated, "UNAUTHENTICATED"},
	} {
		t.Run(tt.name, func(t *testing.T) { wantStatus(t, tt.call(), tt.code, tt.reason) })
	}
}

func TestListDoNotCallPages(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	ctx := callerCtx(context.Background(), "acc-a")
	camp := e.campaign(t, "acc-a", "", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("+1415555%04d", 100+(i*37)%1000))
	}
	if _, err := e.client.AddDoNotCall(ctx, &dialerv1.AddDoNotCallRequest{Numbers: want, Reason: "opt-out"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.AddDoNotCall(ctx, &dialerv1.AddDoNotCallRequest{CampaignId: camp, Numbers: []string{"+14155559999"}}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		resp, err := e.client.ListDoNotCall(ctx, &dialerv1.ListDoNotCallRequest{PageSize: 10, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range resp.GetEntries() {
			if en.GetReason() != "opt-out" || en.GetCreatedAt() == nil {
				t.Fatalf("entry %v", en)
			}
			got = append(got, en.GetNumber())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages gave %q\nwant %q", got, want)
	}
	resp, err := e.client.ListDoNotCall(ctx, &dialerv1.ListDoNotCallRequest{CampaignId: camp})
	if err != nil || len(resp.GetEntries()) != 1 || resp.GetEntries()[0].GetNumber() != "+14155559999" || resp.GetNextPageToken() != "" {
		t.Fatalf("the campaign's list: %v %v", resp, err)
	}
}
