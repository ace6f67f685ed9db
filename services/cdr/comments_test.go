package cdr

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
)

const (
	kText    = cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_TEXT
	kNumber  = cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_NUMBER
	kChoice  = cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_CHOICE
	kDate    = cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_DATE
	kBoolean = cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_BOOLEAN
)

var tevEpoch = time.Date(2024, 3, 4, 9, 0, 0, 0, time.UTC)

// outcomeType is the proto's example: a required CHOICE and one field of
// every other kind.
func outcomeType() *cdrv1.CommentType {
	return &cdrv1.CommentType{Name: "Outcome", Fields: []*cdrv1.CommentField{
		{Name: "result", Label: "Result", Kind: kChoice, Required: true, Choices: []string{"sale", "no sale"}},
		{Name: "amount", Kind: kNumber},
		{Name: "note", Kind: kText},
		{Name: "follow_up", Label: "Follow-up", Kind: kDate},
		{Name: "callback", Kind: kBoolean},
	}}
}

func mustCreateType(t *testing.T, srv *CommentServer, account string, ct *cdrv1.CommentType) *cdrv1.CommentType {
	t.Helper()
	resp, err := srv.CreateCommentType(tdbAs(account), &cdrv1.CreateCommentTypeRequest{CommentType: ct})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCommentType()
}

func mustAddComment(t *testing.T, srv *CommentServer, account, callID, typeID string, values map[string]any) *cdrv1.Comment {
	t.Helper()
	v, err := structpb.NewStruct(values)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.AddComment(tdbAs(account), &cdrv1.AddCommentRequest{CallId: callID,
		Comment: &cdrv1.Comment{TypeId: typeID, Values: v, Author: "Ana"}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetComment()
}

func wantProto(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("%s = %s\nwant %s", what, prototext.Format(got), prototext.Format(want))
	}
}

func TestCommentTypeValidation(t *testing.T) {
	t.Parallel()
	srv := &CommentServer{Store: tdbOpen(t)}
	ctx := tdbAs("acct-a")
	text := func(name string) *cdrv1.CommentField { return &cdrv1.CommentField{Name: name, Kind: kText} }
	textFields := func(n int) []*cdrv1.CommentField {
		fs := make([]*cdrv1.CommentField, n)
		for i := range fs {
			fs[i] = text(fmt.Sprintf("f%d", i))
		}
		return fs
	}
	choice := func(choices ...string) []*cdrv1.CommentField {
		return []*cdrv1.CommentField{{Name: "result", Kind: kChoice, Choices: choices}}
	}
	manyChoices := func(n int) []string {
		cs := make([]string, n)
		for i := range cs {
			cs[i] = fmt.Sprintf("choice %d", i)
		}
		return cs
	}
	one := []*cdrv1.CommentField{text("note")}
	tests := []struct {
		name    string
		ct      *cdrv1.CommentType
		wantErr string // part of the message; empty: accepted
	}{
		{"valid", outcomeType(), ""},
		{"name of 100 characters", &cdrv1.CommentType{Name: strings.Repeat("ñ", 100), Fields: one}, ""},
		{"50 fields", &cdrv1.CommentType{Name: "fifty", Fields: textFields(50)}, ""},
		{"field name of 40 characters", &cdrv1.CommentType{Name: "long field", Fields: []*cdrv1.CommentField{text("a" + strings.Repeat("_9", 19) + "z")}}, ""},
		{"100 choices of 200 characters", &cdrv1.CommentType{Name: "choices", Fields: choice(append(manyChoices(99), strings.Repeat("x", 200))...)}, ""},
		{"label of 200 characters", &cdrv1.CommentType{Name: "label", Fields: []*cdrv1.CommentField{{Name: "n", Kind: kText, Label: strings.Repeat("é", 200)}}}, ""},

		{"no type", nil, "comment_type is required"},
		{"empty name", &cdrv1.CommentType{Fields: one}, "name must have 1 to 100 characters"},
		{"blank name", &cdrv1.CommentType{Name: "  \t", Fields: one}, "name must have 1 to 100 characters"},
		{"name of 101 characters", &cdrv1.CommentType{Name: strings.Repeat("ñ", 101), Fields: one}, "has 101"},
		{"control character in name", &cdrv1.CommentType{Name: "a\x00b", Fields: one}, "control characters"},
		{"no fields", &cdrv1.CommentType{Name: "none"}, "1 to 50 fields, this one has 0"},
		{"51 fields", &cdrv1.CommentType{Name: "many", Fields: textFields(51)}, "1 to 50 fields, this one has 51"},
		{"empty field name", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{text("")}}, `name "" must be 1-40`},
		{"upper case field name", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{text("Result")}}, `name "Result" must be 1-40`},
		{"field name starting with a digit", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{text("1st")}}, "starting with a letter"},
		{"field name with a dash", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{text("follow-up")}}, `"follow-up"`},
		{"field name of 41 characters", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{text(strings.Repeat("a", 41))}}, "must be 1-40"},
		{"field name twice", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{text("note"), {Name: "note", Kind: kNumber}}}, `fields[1]: name "note" is used twice`},
		{"kind unset", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{{Name: "note"}}}, `field "note": kind must be`},
		{"unknown kind", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{{Name: "note", Kind: 42}}}, "kind must be"},
		{"choice without choices", &cdrv1.CommentType{Name: "x", Fields: choice()}, "1 to 100 choices, this one has 0"},
		{"101 choices", &cdrv1.CommentType{Name: "x", Fields: choice(manyChoices(101)...)}, "this one has 101"},
		{"choice twice", &cdrv1.CommentType{Name: "x", Fields: choice("sale", "no sale", "sale")}, `choice "sale" is given twice`},
		{"empty choice", &cdrv1.CommentType{Name: "x", Fields: choice("sale", "")}, "choices[1] is empty"},
		{"blank choice", &cdrv1.CommentType{Name: "x", Fields: choice(" ")}, "choices[0] is empty"},
		{"choice of 201 characters", &cdrv1.CommentType{Name: "x", Fields: choice(strings.Repeat("x", 201))}, "choices[0] has 201 characters"},
		{"choices of a TEXT field", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{{Name: "note", Kind: kText, Choices: []string{"a"}}}}, "only CHOICE fields have choices, this one is TEXT"},
		{"label of 201 characters", &cdrv1.CommentType{Name: "x", Fields: []*cdrv1.CommentField{{Name: "n", Kind: kText, Label: strings.Repeat("é", 201)}}}, "label has 201 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := srv.CreateCommentType(ctx, &cdrv1.CreateCommentTypeRequest{CommentType: tt.ct})
			if tt.wantErr != "" {
				tdbWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := resp.GetCommentType()
			if got.GetId() == "" || len(got.GetFields()) != len(tt.ct.GetFields()) || got.GetCreatedAt() == nil {
				t.Fatalf("created %v", got)
			}
		})
	}

	// Updates are validated the same way.
	ct := mustCreateType(t, srv, "acct-a", &cdrv1.CommentType{Name: "to update", Fields: one})
	ct.Fields = append(ct.Fields, &cdrv1.CommentField{Name: "Bad"})
	_, err := srv.UpdateCommentType(ctx, &cdrv1.UpdateCommentTypeRequest{CommentType: ct})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", `"Bad"`)
	_, err = srv.UpdateCommentType(ctx, &cdrv1.UpdateCommentTypeRequest{CommentType: &cdrv1.CommentType{Name: "no id", Fields: one}})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", "comment_type.id is required")
}

func TestCommentTypeLifecycle(t *testing.T) {
	t.Parallel()
	srv := &CommentServer{Store: tdbOpen(t), Now: tdbClock(tevEpoch)}
	ctx := tdbAs("acct-a")

	outcome := mustCreateType(t, srv, "acct-a", outcomeType())
	want := outcomeType()
	want.Id = outcome.GetId()
	want.CreatedAt, want.UpdatedAt = outcome.GetCreatedAt(), outcome.GetCreatedAt()
	wantProto(t, "created type", outcome, want)
	if !outcome.GetCreatedAt().AsTime().Equal(tevEpoch) {
		t.Fatalf("created_at = %v, want the server's clock %v", outcome.GetCreatedAt().AsTime(), tevEpoch)
	}
	got, err := srv.GetCommentType(ctx, &cdrv1.GetCommentTypeRequest{Id: outcome.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	wantProto(t, "GetCommentType", got.GetCommentType(), outcome)

	// Names are unique in the account, compared after trimming.
	_, err = srv.CreateCommentType(ctx, &cdrv1.CreateCommentTypeRequest{CommentType: &cdrv1.CommentType{Name: " Outcome ",
		Fields: []*cdrv1.CommentField{{Name: "x", Kind: kText}}}})
	tdbWantErr(t, err, codes.AlreadyExists, "COMMENT_TYPE_EXISTS", `"Outcome"`)

	follow := mustCreateType(t, srv, "acct-a", &cdrv1.CommentType{Name: "Follow-up", Fields: []*cdrv1.CommentField{{Name: "when", Kind: kDate}}})
	lower := mustCreateType(t, srv, "acct-a", &cdrv1.CommentType{Name: "audit", Fields: []*cdrv1.CommentField{{Name: "ok", Kind: kBoolean}}})
	list, err := srv.ListCommentTypes(ctx, &cdrv1.ListCommentTypesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ct := range list.GetCommentTypes() {
		names = append(names, ct.GetName())
	}
	if got, want := strings.Join(names, ","), "Follow-up,Outcome,audit"; got != want {
		t.Fatalf("ListCommentTypes names = %s, want %s (by name)", got, want)
	}
	exported, err := srv.Store.CommentTypes(context.Background(), "acct-a")
	if err != nil || len(exported) != 3 || !proto.Equal(exported[1], outcome) {
		t.Fatalf("CommentTypes = %v, %v", exported, err)
	}

	// Unused: anything may change, kinds included.
	upd := outcomeType()
	upd.Id, upd.Name = outcome.GetId(), "Sale outcome"
	upd.Fields[0].Choices = []string{"sale", "no sale", "call back"}
	upd.Fields[0].Label = "Result of the call"
	upd.Fields[1].Kind = kText
	upd.Fields = upd.Fields[:4] // callback removed
	resp, err := srv.UpdateCommentType(ctx, &cdrv1.UpdateCommentTypeRequest{CommentType: upd})
	if err != nil {
		t.Fatal(err)
	}
	updated := resp.GetCommentType()
	upd.CreatedAt = outcome.GetCreatedAt()
	upd.UpdatedAt = updated.GetUpdatedAt()
	wantProto(t, "updated type", updated, upd)
	if !updated.GetUpdatedAt().AsTime().After(updated.GetCreatedAt().AsTime()) {
		t.Fatalf("updated_at %v not after created_at %v", updated.GetUpdatedAt().AsTime(), updated.GetCreatedAt().AsTime())
	}

	// Renaming onto another type's name.
	ren := proto.CloneOf(follow)
	ren.Name = "audit"
	_, err = srv.UpdateCommentType(ctx, &cdrv1.UpdateCommentTypeRequest{CommentType: ren})
	tdbWantErr(t, err, codes.AlreadyExists, "COMMENT_TYPE_EXISTS", `"audit"`)
	ren.Id = "no-such-type"
	_, err = srv.UpdateCommentType(ctx, &cdrv1.UpdateCommentTypeRequest{CommentType: ren})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_TYPE_NOT_FOUND", "no-such-type")

	if _, err := srv.DeleteCommentType(ctx, &cdrv1.DeleteCommentTypeRequest{Id: lower.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = srv.GetCommentType(ctx, &cdrv1.GetCommentTypeRequest{Id: lower.GetId()})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_TYPE_NOT_FOUND", lower.GetId())
	_, err = srv.DeleteCommentType(ctx, &cdrv1.DeleteCommentTypeRequest{Id: lower.GetId()})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_TYPE_NOT_FOUND", lower.GetId())
	_, err = srv.DeleteCommentType(ctx, &cdrv1.DeleteCommentTypeRequest{})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", "id is required")
	_, err = srv.GetCommentType(ctx, &cdrv1.GetCommentTypeRequest{})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", "id is required")
}

func TestCommentTypeInUse(t *testing.T) {
	t.Parallel()
	srv := &CommentServer{Store: tdbOpen(t), Now: tdbClock(tevEpoch)}
	ctx := tdbAs("acct-a")
	call := tdbInsert(t, srv.Store, tevSpec{DurationS: 60, Billsec: 50})[0]
	ct := mustCreateType(t, srv, "acct-a", outcomeType())
	c := mustAddComment(t, srv, "acct-a", call, ct.GetId(), map[string]any{"result": "sale", "amount": 120.5})

	update := func(edit func(ct *cdrv1.CommentType)) (*cdrv1.CommentType, error) {
		next := proto.CloneOf(ct)
		edit(next)
		resp, err := srv.UpdateCommentType(ctx, &cdrv1.UpdateCommentTypeRequest{CommentType: next})
		return resp.GetCommentType(), err
	}
	_, err := update(func(ct *cdrv1.CommentType) { ct.Fields = append(ct.Fields[:1], ct.Fields[2:]...) })
	tdbWantErr(t, err, codes.FailedPrecondition, "COMMENT_TYPE_IN_USE", `field "amount" cannot be removed: comments use type "Outcome"`)
	_, err = update(func(ct *cdrv1.CommentType) { ct.Fields[1].Kind = kText })
	tdbWantErr(t, err, codes.FailedPrecondition, "COMMENT_TYPE_IN_USE", `field "amount" cannot change from NUMBER to TEXT`)
	_, err = update(func(ct *cdrv1.CommentType) { ct.Fields[4].Name = "call_back" })
	tdbWantErr(t, err, codes.FailedPrecondition, "COMMENT_TYPE_IN_USE", `field "callback" cannot be removed`)

	// What keeps existing comments meaningful is allowed.
	got, err := update(func(ct *cdrv1.CommentType) {
		ct.Name = "Outcome v2"
		ct.Fields[0].Choices = []string{"sale", "no sale", "call back"}
		ct.Fields[1].Label, ct.Fields[1].Required = "Amount (USD)", true
		ct.Fields = append([]*cdrv1.CommentField{{Name: "agent", Kind: kText}}, ct.Fields...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetName() != "Outcome v2" || len(got.GetFields()) != 6 || got.GetFields()[2].GetLabel() != "Amount (USD)" {
		t.Fatalf("updated type = %v", got)
	}

	_, err = srv.DeleteCommentType(ctx, &cdrv1.DeleteCommentTypeRequest{Id: ct.GetId()})
	tdbWantErr(t, err, codes.FailedPrecondition, "COMMENT_TYPE_IN_USE", ct.GetId())
	if _, err := srv.DeleteComment(ctx, &cdrv1.DeleteCommentRequest{CallId: call, Id: c.GetId()}); err != nil {
		t.Fatal(err)
	}
	// No comment left: kinds may change and fields go again.
	if _, err := update(func(ct *cdrv1.CommentType) { ct.Fields = ct.Fields[:1] }); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.DeleteCommentType(ctx, &cdrv1.DeleteCommentTypeRequest{Id: ct.GetId()}); err != nil {
		t.Fatal(err)
	}
}

func TestCommentValues(t *testing.T) {
	t.Parallel()
	srv := &CommentServer{Store: tdbOpen(t), Now: tdbClock(tevEpoch)}
	ctx := tdbAs("acct-a")
	call := tdbInsert(t, srv.Store, tevSpec{DurationS: 60, Billsec: 50})[0]
	outcome := mustCreateType(t, srv, "acct-a", outcomeType())
	summary := mustCreateType(t, srv, "acct-a", &cdrv1.CommentType{Name: "Summary",
		Fields: []*cdrv1.CommentField{{Name: "summary", Kind: kText, Required: true}}})

	tests := []struct {
		name    string
		typeID  string // default: outcome
		values  map[string]any
		author  string
		want    map[string]any // stored values; default: values
		wantErr string         // part of the message; empty: accepted
	}{
		{name: "every kind", values: map[string]any{"result": "sale", "amount": 120.5, "note": "wants a demo",
			"follow_up": "2024-02-29", "callback": false}},
		{name: "required only", values: map[string]any{"result": "no sale"}},
		{name: "negative and integral numbers", values: map[string]any{"result": "sale", "amount": -3}},
		{name: "null is absent", values: map[string]any{"result": "sale", "note": nil, "amount": nil},
			want: map[string]any{"result": "sale"}},
		{name: "text of 2000 characters", values: map[string]any{"result": "sale", "note": strings.Repeat("ñ", 2000)}},
		{name: "author of 200 characters", values: map[string]any{"result": "sale"}, author: strings.Repeat("a", 200)},

		{name: "required missing", values: map[string]any{"note": "x"}, wantErr: `field "result" of comment type "Outcome" is required`},
		{name: "required null", values: map[string]any{"result": nil}, wantErr: `field "result" of comment type "Outcome" is required`},
		{name: "no values", values: nil, wantErr: `"result" of comment type "Outcome" is required`},
		{name: "required text blank", typeID: summary.GetId(), values: map[string]any{"summary": "  "}, wantErr: `field "summary" of comment type "Summary" is required`},
		{name: "unknown field", values: map[string]any{"result": "sale", "colour": "red"}, wantErr: `"colour" is not a field of comment type "Outcome" (fields: result, amount, note, follow_up, callback)`},
		{name: "text too long", values: map[string]any{"result": "sale", "note": strings.Repeat("ñ", 2001)}, wantErr: `field "note" has 2001 characters, at most 2000`},
		{name: "text not a string", values: map[string]any{"result": "sale", "note": 5}, wantErr: `field "note" is TEXT: want a string`},
		{name: "number as a string", values: map[string]any{"result": "sale", "amount": "12"}, wantErr: `field "amount" is NUMBER: want a number`},
		{name: "number NaN", values: map[string]any{"result": "sale", "amount": math.NaN()}, wantErr: "want a finite number"},
		{name: "number infinite", values: map[string]any{"result": "sale", "amount": math.Inf(-1)}, wantErr: "want a finite number"},
		{name: "choice not one of the choices", values: map[string]any{"result": "Sale"}, wantErr: `field "result": "Sale" is not one of its choices (sale, no sale)`},
		{name: "choice not a string", values: map[string]any{"result": true}, wantErr: `field "result" is CHOICE`},
		{name: "date that does not exist", values: map[string]any{"result": "sale", "follow_up": "2023-02-29"}, wantErr: `"2023-02-29" is not a date YYYY-MM-DD`},
		{name: "date without zeros", values: map[string]any{"result": "sale", "follow_up": "2024-3-5"}, wantErr: "is not a date YYYY-MM-DD"},
		{name: "date with a time", values: map[string]any{"result": "sale", "follow_up": "2024-03-05T10:00:00Z"}, wantErr: "is not a date YYYY-MM-DD"},
		{name: "date as a number", values: map[string]any{"result": "sale", "follow_up": 20240305}, wantErr: `field "follow_up" is DATE: want a string`},
		{name: "boolean as a string", values: map[string]any{"result": "sale", "callback": "true"}, wantErr: `field "callback" is BOOLEAN: want true or false`},
		{name: "author of 201 characters", values: map[string]any{"result": "sale"}, author: strings.Repeat("a", 201), wantErr: "author has 201 characters, at most 200"},
		{name: "no type", typeID: "-", values: map[string]any{"result": "sale"}, wantErr: "comment.type_id is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var values *structpb.Struct
			if tt.values != nil {
				var err error
				if values, err = structpb.NewStruct(tt.values); err != nil {
					t.Fatal(err)
				}
			}
			typeID := outcome.GetId()
			switch tt.typeID {
			case "-":
				typeID = ""
			case "":
			default:
				typeID = tt.typeID
			}
			resp, err := srv.AddComment(ctx, &cdrv1.AddCommentRequest{CallId: call,
				Comment: &cdrv1.Comment{TypeId: typeID, Values: values, Author: tt.author}})
			if tt.wantErr != "" {
				tdbWantErr(t, err, codes.InvalidArgument, "INVALID_COMMENT", tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == nil {
				want = tt.values
			}
			wantValues, err := structpb.NewStruct(want)
			if err != nil {
				t.Fatal(err)
			}
			c := resp.GetComment()
			wantProto(t, "values", c.GetValues(), wantValues)
			if c.GetId() == "" || c.GetCallId() != call || c.GetTypeId() != typeID || c.GetAuthor() != tt.author || c.GetCreatedAt() == nil {
				t.Fatalf("comment = %v", c)
			}
			// As stored (jsonb) and read back.
			list, err := srv.ListComments(ctx, &cdrv1.ListCommentsRequest{CallId: call})
			if err != nil {
				t.Fatal(err)
			}
			cs := list.GetComments()
			wantProto(t, "listed comment", cs[len(cs)-1], c)
		})
	}
}

func TestCommentNotFound(t *testing.T) {
	t.Parallel()
	srv := &CommentServer{Store: tdbOpen(t), Now: tdbClock(tevEpoch)}
	ctx := tdbAs("acct-a")
	calls := tdbInsert(t, srv.Store, tevSpec{}, tevSpec{})
	ct := mustCreateType(t, srv, "acct-a", outcomeType())
	values, _ := structpb.NewStruct(map[string]any{"result": "sale"})

	_, err := srv.AddComment(ctx, &cdrv1.AddCommentRequest{CallId: "no-such-call", Comment: &cdrv1.Comment{TypeId: ct.GetId(), Values: values}})
	tdbWantErr(t, err, codes.NotFound, "CDR_NOT_FOUND", "no-such-call")
	_, err = srv.AddComment(ctx, &cdrv1.AddCommentRequest{CallId: calls[0], Comment: &cdrv1.Comment{TypeId: "no-such-type", Values: values}})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_TYPE_NOT_FOUND", "no-such-type")
	_, err = srv.AddComment(ctx, &cdrv1.AddCommentRequest{Comment: &cdrv1.Comment{TypeId: ct.GetId(), Values: values}})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", "call_id is required")
	_, err = srv.ListComments(ctx, &cdrv1.ListCommentsRequest{CallId: "no-such-call"})
	tdbWantErr(t, err, codes.NotFound, "CDR_NOT_FOUND", "no-such-call")

	c := mustAddComment(t, srv, "acct-a", calls[0], ct.GetId(), map[string]any{"result": "sale"})
	_, err = srv.DeleteComment(ctx, &cdrv1.DeleteCommentRequest{CallId: calls[0], Id: "no-such-comment"})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_NOT_FOUND", "no-such-comment")
	_, err = srv.DeleteComment(ctx, &cdrv1.DeleteCommentRequest{CallId: calls[1], Id: c.GetId()})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_NOT_FOUND", c.GetId())
	_, err = srv.DeleteComment(ctx, &cdrv1.DeleteCommentRequest{CallId: calls[0]})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", "call_id and id are required")

	// Without the gateway's account header nothing is answered.
	_, err = srv.ListCommentTypes(context.Background(), &cdrv1.ListCommentTypesRequest{})
	tdbWantErr(t, err, codes.Unauthenticated, "UNAUTHENTICATED", "")
	_, err = srv.AddComment(context.Background(), &cdrv1.AddCommentRequest{CallId: calls[0], Comment: &cdrv1.Comment{TypeId: ct.GetId(), Values: values}})
	tdbWantErr(t, err, codes.Unauthenticated, "UNAUTHENTICATED", "")
}

func TestCommentTenantIsolation(t *testing.T) {
	t.Parallel()
	srv := &CommentServer{Store: tdbOpen(t), Now: tdbClock(tevEpoch)}
	a, b := tdbAs("acct-a"), tdbAs("acct-b")
	callA := tdbInsert(t, srv.Store, tevSpec{Account: "acct-a"})[0]
	callB := tdbInsert(t, srv.Store, tevSpec{Account: "acct-b"})[0]
	typeA := mustCreateType(t, srv, "acct-a", outcomeType())
	commentA := mustAddComment(t, srv, "acct-a", callA, typeA.GetId(), map[string]any{"result": "sale"})
	values, _ := structpb.NewStruct(map[string]any{"result": "sale"})

	// B sees none of A's types, and may use A's names.
	list, err := srv.ListCommentTypes(b, &cdrv1.ListCommentTypesRequest{})
	if err != nil || len(list.GetCommentTypes()) != 0 {
		t.Fatalf("B's types = %v, %v", list.GetCommentTypes(), err)
	}
	_, err = srv.GetCommentType(b, &cdrv1.GetCommentTypeRequest{Id: typeA.GetId()})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_TYPE_NOT_FOUND", "")
	upd := proto.CloneOf(typeA)
	upd.Name = "taken by B"
	_, err = srv.UpdateCommentType(b, &cdrv1.UpdateCommentTypeRequest{CommentType: upd})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_TYPE_NOT_FOUND", "")
	_, err = srv.DeleteCommentType(b, &cdrv1.DeleteCommentTypeRequest{Id: typeA.GetId()})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_TYPE_NOT_FOUND", "")
	typeB := mustCreateType(t, srv, "acct-b", outcomeType())

	// B can neither comment with A's type nor on A's call.
	_, err = srv.AddComment(b, &cdrv1.AddCommentRequest{CallId: callB, Comment: &cdrv1.Comment{TypeId: typeA.GetId(), Values: values}})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_TYPE_NOT_FOUND", "")
	_, err = srv.AddComment(b, &cdrv1.AddCommentRequest{CallId: callA, Comment: &cdrv1.Comment{TypeId: typeB.GetId(), Values: values}})
	tdbWantErr(t, err, codes.NotFound, "CDR_NOT_FOUND", "")
	_, err = srv.AddComment(a, &cdrv1.AddCommentRequest{CallId: callA, Comment: &cdrv1.Comment{TypeId: typeB.GetId(), Values: values}})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_TYPE_NOT_FOUND", "")

	// Nor read or delete A's comments.
	_, err = srv.ListComments(b, &cdrv1.ListCommentsRequest{CallId: callA})
	tdbWantErr(t, err, codes.NotFound, "CDR_NOT_FOUND", "")
	_, err = srv.DeleteComment(b, &cdrv1.DeleteCommentRequest{CallId: callA, Id: commentA.GetId()})
	tdbWantErr(t, err, codes.NotFound, "COMMENT_NOT_FOUND", "")
	byCall, err := srv.Store.CommentsFor(context.Background(), "acct-b", []string{callA, callB})
	if err != nil || len(byCall) != 0 {
		t.Fatalf("CommentsFor(acct-b, A's call) = %v, %v", byCall, err)
	}

	// A's comment is still there, and A's type still in use.
	got, err := srv.ListComments(a, &cdrv1.ListCommentsRequest{CallId: callA})
	if err != nil || len(got.GetComments()) != 1 {
		t.Fatalf("A's comments = %v, %v", got.GetComments(), err)
	}
	_, err = srv.DeleteCommentType(a, &cdrv1.DeleteCommentTypeRequest{Id: typeA.GetId()})
	tdbWantErr(t, err, codes.FailedPrecondition, "COMMENT_TYPE_IN_USE", "")
}

func TestCommentsFor(t *testing.T) {
	t.Parallel()
	srv := &CommentServer{Store: tdbOpen(t), Now: tdbClock(tevEpoch)}
	calls := tdbInsert(t, srv.Store, tevSpec{}, tevSpec{}, tevSpec{})
	other := tdbInsert(t, srv.Store, tevSpec{Account: "acct-b"})[0]
	ct := mustCreateType(t, srv, "acct-a", outcomeType())
	ctB := mustCreateType(t, srv, "acct-b", outcomeType())

	// Added out of call order; each call's comments come back oldest first.
	c1 := mustAddComment(t, srv, "acct-a", calls[1], ct.GetId(), map[string]any{"result": "sale"})
	c0 := mustAddComment(t, srv, "acct-a", calls[0], ct.GetId(), map[string]any{"result": "no sale"})
	c2 := mustAddComment(t, srv, "acct-a", calls[1], ct.GetId(), map[string]any{"result": "no sale", "callback": true})
	mustAddComment(t, srv, "acct-b", other, ctB.GetId(), map[string]any{"result": "sale"})

	got, err := srv.Store.CommentsFor(context.Background(), "acct-a", []string{calls[0], calls[1], calls[2], other, "no-such-call"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[calls[0]]) != 1 || len(got[calls[1]]) != 2 {
		t.Fatalf("CommentsFor = %v, want 1 comment on the first call and 2 on the second", got)
	}
	wantProto(t, "first call's comment", got[calls[0]][0], c0)
	wantProto(t, "second call's first comment", got[calls[1]][0], c1)
	wantProto(t, "second call's second comment", got[calls[1]][1], c2)

	list, err := srv.ListComments(tdbAs("acct-a"), &cdrv1.ListCommentsRequest{CallId: calls[1]})
	if err != nil || len(list.GetComments()) != 2 || !proto.Equal(list.GetComments()[1], c2) {
		t.Fatalf("ListComments = %v, %v", list.GetComments(), err)
	}
	list, err = srv.ListComments(tdbAs("acct-a"), &cdrv1.ListCommentsRequest{CallId: calls[2]})
	if err != nil || len(list.GetComments()) != 0 {
		t.Fatalf("ListComments of a call without comments = %v, %v", list.GetComments(), err)
	}
	empty, err := srv.Store.CommentsFor(context.Background(), "acct-a", nil)
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("CommentsFor(no calls) = %v, %v", empty, err)
	}
}
