package cdr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	"github.com/ringback/ringback/services/internal/ids"
)

// Bounds of comment types and comments.
const (
	MaxCommentTypeName = 100 // characters
	MaxCommentFields   = 50
	MaxFieldChoices    = 100
	MaxChoiceLen       = 200 // characters, also of labels
	MaxTextValue       = 2000
	MaxAuthor          = 200
)

var fieldNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// CommentServer is the CommentService gRPC API.
type CommentServer struct {
	cdrv1.UnimplementedCommentServiceServer
	Store *Store
	// Now is the clock comments and types are stamped with (nil: time.Now).
	Now func() time.Time
}

func (s *CommentServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// CreateCommentType defines a comment type in the caller's account.
func (s *CommentServer) CreateCommentType(ctx context.Context, req *cdrv1.CreateCommentTypeRequest) (*cdrv1.CreateCommentTypeResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.Store.CreateCommentType(ctx, account, req.GetCommentType(), s.now())
	if err != nil {
		return nil, err
	}
	return &cdrv1.CreateCommentTypeResponse{CommentType: t}, nil
}

// ListCommentTypes lists the caller's comment types by name.
func (s *CommentServer) ListCommentTypes(ctx context.Context, _ *cdrv1.ListCommentTypesRequest) (*cdrv1.ListCommentTypesResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := s.Store.CommentTypes(ctx, account)
	if err != nil {
		return nil, err
	}
	return &cdrv1.ListCommentTypesResponse{CommentTypes: ts}, nil
}

// GetCommentType returns one of the caller's comment types.
func (s *CommentServer) GetCommentType(ctx context.Context, req *cdrv1.GetCommentTypeRequest) (*cdrv1.GetCommentTypeResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.Store.CommentType(ctx, account, req.GetId())
	if err != nil {
		return nil, err
	}
	return &cdrv1.GetCommentTypeResponse{CommentType: t}, nil
}

// UpdateCommentType replaces the name and fields of one of the caller's
// comment types.
func (s *CommentServer) UpdateCommentType(ctx context.Context, req *cdrv1.UpdateCommentTypeRequest) (*cdrv1.UpdateCommentTypeResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.Store.UpdateCommentType(ctx, account, req.GetCommentType(), s.now())
	if err != nil {
		return nil, err
	}
	return &cdrv1.UpdateCommentTypeResponse{CommentType: t}, nil
}

// DeleteCommentType deletes one of the caller's comment types that no
// comment uses.
func (s *CommentServer) DeleteCommentType(ctx context.Context, req *cdrv1.DeleteCommentTypeRequest) (*cdrv1.DeleteCommentTypeResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Store.DeleteCommentType(ctx, account, req.GetId()); err != nil {
		return nil, err
	}
	return &cdrv1.DeleteCommentTypeResponse{}, nil
}

// AddComment comments on one of the caller's recorded calls.
func (s *CommentServer) AddComment(ctx context.Context, req *cdrv1.AddCommentRequest) (*cdrv1.AddCommentResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.Store.AddComment(ctx, account, req.GetCallId(), req.GetComment(), s.now())
	if err != nil {
		return nil, err
	}
	return &cdrv1.AddCommentResponse{Comment: c}, nil
}

// ListComments lists the comments on one of the caller's recorded calls,
// oldest first.
func (s *CommentServer) ListComments(ctx context.Context, req *cdrv1.ListCommentsRequest) (*cdrv1.ListCommentsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := s.Store.Comments(ctx, account, req.GetCallId())
	if err != nil {
		return nil, err
	}
	return &cdrv1.ListCommentsResponse{Comments: cs}, nil
}

// DeleteComment deletes a comment on one of the caller's calls.
func (s *CommentServer) DeleteComment(ctx context.Context, req *cdrv1.DeleteCommentRequest) (*cdrv1.DeleteCommentResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Store.DeleteComment(ctx, account, req.GetCallId(), req.GetId()); err != nil {
		return nil, err
	}
	return &cdrv1.DeleteCommentResponse{}, nil
}

// storedField is a comment field as kept in cdr.comment_types.fields; the
// kind is the proto enum number, like the enum columns of cdr.cdrs.
type storedField struct {
	Name     string   `json:"name"`
	Label    string   `json:"label"`
	Kind     int32    `json:"kind"`
	Required bool     `json:"required"`
	Choices  []string `json:"choices"`
}

const commentTypeCols = "id, name, fields, created_at, updated_at"

func scanCommentType(row pgx.Row) (*cdrv1.CommentType, error) {
	var (
		t          cdrv1.CommentType
		raw        []byte
		created, u time.Time
	)
	if err := row.Scan(&t.Id, &t.Name, &raw, &created, &u); err != nil {
		return nil, err
	}
	var fs []storedField
	if err := json.Unmarshal(raw, &fs); err != nil {
		return nil, fmt.Errorf("comment type %s: fields: %w", t.Id, err)
	}
	for _, f := range fs {
		t.Fields = append(t.Fields, &cdrv1.CommentField{Name: f.Name, Label: f.Label,
			Kind: cdrv1.CommentFieldKind(f.Kind), Required: f.Required, Choices: f.Choices})
	}
	t.CreatedAt, t.UpdatedAt = timestamppb.New(created), timestamppb.New(u)
	return &t, nil
}

func fieldsJSON(fields []*cdrv1.CommentField) ([]byte, error) {
	fs := make([]storedField, len(fields))
	for i, f := range fields {
		fs[i] = storedField{Name: f.GetName(), Label: f.GetLabel(), Kind: int32(f.GetKind()), Required: f.GetRequired(),
			Choices: f.GetChoices()}
		if fs[i].Choices == nil {
			fs[i].Choices = []string{}
		}
	}
	return json.Marshal(fs)
}

// kindName is a field kind as users write it: TEXT, NUMBER, ...
func kindName(k cdrv1.CommentFieldKind) string {
	return strings.TrimPrefix(k.String(), "COMMENT_FIELD_KIND_")
}

func invalidType(format string, args ...any) error {
	return ErrInvalidArgument.WithMsg(fmt.Sprintf(format, args...))
}

// checkCommentType validates a comment type and returns its normalized
// copy (name and labels trimmed); the id and times are not looked at.
func checkCommentType(t *cdrv1.CommentType) (*cdrv1.CommentType, error) {
	if t == nil {
		return nil, invalidType("comment_type is required")
	}
	name := strings.TrimSpace(t.GetName())
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxCommentTypeName {
		return nil, invalidType("name must have 1 to %d characters, has %d", MaxCommentTypeName, n)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return nil, invalidType("name %q has control characters", name)
	}
	if n := len(t.GetFields()); n == 0 || n > MaxCommentFields {
		return nil, invalidType("a comment type has 1 to %d fields, this one has %d", MaxCommentFields, n)
	}
	out := &cdrv1.CommentType{Id: t.GetId(), Name: name}
	seen := make(map[string]bool, len(t.GetFields()))
	for i, f := range t.GetFields() {
		if !fieldNameRe.MatchString(f.GetName()) {
			return nil, invalidType("fields[%d]: name %q must be 1-40 of a-z, 0-9 and _, starting with a letter", i, f.GetName())
		}
		if seen[f.GetName()] {
			return nil, invalidType("fields[%d]: name %q is used twice", i, f.GetName())
		}
		seen[f.GetName()] = true
		label := strings.TrimSpace(f.GetLabel())
		if n := utf8.RuneCountInString(label); n > MaxChoiceLen {
			return nil, invalidType("field %q: label has %d characters, at most %d", f.GetName(), n, MaxChoiceLen)
		}
		kind := f.GetKind()
		if _, ok := cdrv1.CommentFieldKind_name[int32(kind)]; !ok || kind == cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_UNSPECIFIED {
			return nil, invalidType("field %q: kind must be TEXT, NUMBER, CHOICE, DATE or BOOLEAN", f.GetName())
		}
		choices := f.GetChoices()
		if kind == cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_CHOICE {
			if err := checkChoices(f.GetName(), choices); err != nil {
				return nil, err
			}
		} else if len(choices) > 0 {
			return nil, invalidType("field %q: only CHOICE fields have choices, this one is %s", f.GetName(), kindName(kind))
		}
		out.Fields = append(out.Fields, &cdrv1.CommentField{Name: f.GetName(), Label: label, Kind: kind,
			Required: f.GetRequired(), Choices: append([]string(nil), choices...)})
	}
	return out, nil
}

func checkChoices(field string, choices []string) error {
	if n := len(choices); n == 0 || n > MaxFieldChoices {
		return invalidType("field %q: a CHOICE field has 1 to %d choices, this one has %d", field, MaxFieldChoices, n)
	}
	seen := make(map[string]bool, len(choices))
	for i, c := range choices {
		if strings.TrimSpace(c) == "" {
			return invalidType("field %q: choices[%d] is empty", field, i)
		}
		if n := utf8.RuneCountInString(c); n > MaxChoiceLen {
			return invalidType("field %q: choices[%d] has %d characters, at most %d", field, i, n, MaxChoiceLen)
		}
		if seen[c] {
			return invalidType("field %q: choice %q is given twice", field, c)
		}
		seen[c] = true
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

func typeExists(name string) error {
	return ErrCommentTypeExists.WithMsg(fmt.Sprintf("a comment type named %q exists", name))
}

func typeNotFound(id string) error {
	return ErrCommentTypeNotFound.WithMsg(fmt.Sprintf("no comment type %q", id))
}

// CreateCommentType validates t and stores it as a new type of account's.
func (s *Store) CreateCommentType(ctx context.Context, account string, t *cdrv1.CommentType, at time.Time) (*cdrv1.CommentType, error) {
	t, err := checkCommentType(t)
	if err != nil {
		return nil, err
	}
	fields, err := fieldsJSON(t.GetFields())
	if err != nil {
		return nil, fmt.Errorf("create comment type: %w", err)
	}
	out, err := scanCommentType(s.DB.QueryRow(ctx, `INSERT INTO cdr.comment_types (id, account_id, name, fields, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $5) RETURNING `+commentTypeCols, ids.NewV7(), account, t.GetName(), fields, at))
	if isUniqueViolation(err) {
		return nil, typeExists(t.GetName())
	}
	if err != nil {
		return nil, fmt.Errorf("create comment type: %w", err)
	}
	return out, nil
}

// CommentTypes returns the account's comment types ordered by name then
// id (the CSV export's column order).
func (s *Store) CommentTypes(ctx context.Context, account string) ([]*cdrv1.CommentType, error) {
	rows, err := s.DB.Query(ctx, `SELECT `+commentTypeCols+` FROM cdr.comment_types WHERE account_id = $1
ORDER BY name COLLATE "C", id`, account)
	if err != nil {
		return nil, fmt.Errorf("list comment types: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cdrv1.CommentType, error) { return scanCommentType(r) })
	if err != nil {
		return nil, fmt.Errorf("list comment types: %w", err)
	}
	return out, nil
}

// CommentType returns one of the account's comment types.
func (s *Store) CommentType(ctx context.Context, account, id string) (*cdrv1.CommentType, error) {
	if id == "" {
		return nil, ErrInvalidArgument.WithMsg("id is required")
	}
	t, err := scanCommentType(s.DB.QueryRow(ctx, `SELECT `+commentTypeCols+` FROM cdr.comment_types
WHERE id = $1 AND account_id = $2`, id, account))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, typeNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get comment type %s: %w", id, err)
	}
	return t, nil
}

// UpdateCommentType replaces the name and fields of the account's type
// t.Id. While comments use the type, every field keeps its kind and none
// is removed, so that existing comments keep meaning what they meant.
func (s *Store) UpdateCommentType(ctx context.Context, account string, t *cdrv1.CommentType, at time.Time) (*cdrv1.CommentType, error) {
	if t.GetId() == "" {
		return nil, ErrInvalidArgument.WithMsg("comment_type.id is required")
	}
	t, err := checkCommentType(t)
	if err != nil {
		return nil, err
	}
	fields, err := fieldsJSON(t.GetFields())
	if err != nil {
		return nil, fmt.Errorf("update comment type %s: %w", t.GetId(), err)
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("update comment type %s: %w", t.GetId(), err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// FOR UPDATE: AddComment reads the type FOR SHARE, so no comment is
	// validated against the old fields while they change.
	cur, err := scanCommentType(tx.QueryRow(ctx, `SELECT `+commentTypeCols+` FROM cdr.comment_types
WHERE id = $1 AND account_id = $2 FOR UPDATE`, t.GetId(), account))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, typeNotFound(t.GetId())
	}
	if err != nil {
		return nil, fmt.Errorf("update comment type %s: %w", t.GetId(), err)
	}
	var used bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cdr.comments WHERE type_id = $1)`, cur.GetId()).Scan(&used); err != nil {
		return nil, fmt.Errorf("update comment type %s: %w", t.GetId(), err)
	}
	if used {
		if err := keepsFields(cur, t); err != nil {
			return nil, err
		}
	}
	out, err := scanCommentType(tx.QueryRow(ctx, `UPDATE cdr.comment_types SET name = $3, fields = $4, updated_at = $5
WHERE id = $1 AND account_id = $2 RETURNING `+commentTypeCols, cur.GetId(), account, t.GetName(), fields, at))
	if isUniqueViolation(err) {
		return nil, typeExists(t.GetName())
	}
	if err != nil {
		return nil, fmt.Errorf("update comment type %s: %w", t.GetId(), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("update comment type %s: %w", t.GetId(), err)
	}
	return out, nil
}

// keepsFields checks that next keeps every field of cur with its kind.
func keepsFields(cur, next *cdrv1.CommentType) error {
	kinds := make(map[string]cdrv1.CommentFieldKind, len(next.GetFields()))
	for _, f := range next.GetFields() {
		kinds[f.GetName()] = f.GetKind()
	}
	for _, f := range cur.GetFields() {
		k, ok := kinds[f.GetName()]
		if !ok {
			return ErrCommentTypeInUse.WithMsg(fmt.Sprintf("field %q cannot be removed: comments use type %q", f.GetName(), cur.GetName()))
		}
		if k != f.GetKind() {
			return ErrCommentTypeInUse.WithMsg(fmt.Sprintf("field %q cannot change from %s to %s: comments use type %q",
				f.GetName(), kindName(f.GetKind()), kindName(k), cur.GetName()))
		}
	}
	return nil
}

// DeleteCommentType deletes one of the account's comment types, unless a
// comment uses it (the comments' foreign key decides, so a comment added
// meanwhile is seen too).
func (s *Store) DeleteCommentType(ctx context.Context, account, id string) error {
	if id == "" {
		return ErrInvalidArgument.WithMsg("id is required")
	}
	tag, err := s.DB.Exec(ctx, `DELETE FROM cdr.comment_types WHERE id = $1 AND account_id = $2`, id, account)
	if isForeignKeyViolation(err) {
		return ErrCommentTypeInUse.WithMsg(fmt.Sprintf("comments use comment type %q: delete them first", id))
	}
	if err != nil {
		return fmt.Errorf("delete comment type %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return typeNotFound(id)
	}
	return nil
}

func invalidComment(format string, args ...any) error {
	return ErrInvalidComment.WithMsg(fmt.Sprintf(format, args...))
}

// checkValues validates a comment's values against its type and returns
// them without the null (absent) ones.
func checkValues(t *cdrv1.CommentType, values *structpb.Struct) (*structpb.Struct, error) {
	fields := make(map[string]*cdrv1.CommentField, len(t.GetFields()))
	names := make([]string, 0, len(t.GetFields()))
	for _, f := range t.GetFields() {
		fields[f.GetName()] = f
		names = append(names, f.GetName())
	}
	out := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range values.GetFields() {
		f, ok := fields[k]
		if !ok {
			return nil, invalidComment("values: %q is not a field of comment type %q (fields: %s)", k, t.GetName(), strings.Join(names, ", "))
		}
		if _, null := v.GetKind().(*structpb.Value_NullValue); null || v.GetKind() == nil {
			continue
		}
		if err := checkValue(f, v); err != nil {
			return nil, err
		}
		out.Fields[k] = v
	}
	for _, f := range t.GetFields() {
		if !f.GetRequired() {
			continue
		}
		v, ok := out.Fields[f.GetName()]
		// Blank text does not fill a required TEXT field: forms send ""
		// for what was left empty.
		if !ok || (f.GetKind() == cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_TEXT && strings.TrimSpace(v.GetStringValue()) == "") {
			return nil, invalidComment("values: field %q of comment type %q is required", f.GetName(), t.GetName())
		}
	}
	return out, nil
}

func checkValue(f *cdrv1.CommentField, v *structpb.Value) error {
	name := f.GetName()
	switch f.GetKind() {
	case cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_TEXT:
		s, ok := v.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return invalidComment("values: field %q is TEXT: want a string", name)
		}
		if n := utf8.RuneCountInString(s.StringValue); n > MaxTextValue {
			return invalidComment("values: field %q has %d characters, at most %d", name, n, MaxTextValue)
		}
	case cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_NUMBER:
		n, ok := v.GetKind().(*structpb.Value_NumberValue)
		if !ok {
			return invalidComment("values: field %q is NUMBER: want a number", name)
		}
		if math.IsNaN(n.NumberValue) || math.IsInf(n.NumberValue, 0) {
			return invalidComment("values: field %q is NUMBER: want a finite number", name)
		}
	case cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_CHOICE:
		s, ok := v.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return invalidComment("values: field %q is CHOICE: want one of its choices as a string", name)
		}
		for _, c := range f.GetChoices() {
			if c == s.StringValue {
				return nil
			}
		}
		return invalidComment("values: field %q: %q is not one of its choices (%s)", name, s.StringValue, strings.Join(f.GetChoices(), ", "))
	case cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_DATE:
		s, ok := v.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return invalidComment("values: field %q is DATE: want a string YYYY-MM-DD", name)
		}
		if _, err := time.Parse(time.DateOnly, s.StringValue); err != nil || len(s.StringValue) != len(time.DateOnly) {
			return invalidComment("values: field %q is DATE: %q is not a date YYYY-MM-DD", name, s.StringValue)
		}
	case cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_BOOLEAN:
		if _, ok := v.GetKind().(*structpb.Value_BoolValue); !ok {
			return invalidComment("values: field %q is BOOLEAN: want true or false", name)
		}
	default:
		// Stored types are validated; a kind unknown here is a newer
		// release's.
		return invalidComment("values: field %q has a kind this server does not know", name)
	}
	return nil
}

const commentCols = `id, call_id, type_id, "values", author, created_at`

func scanComment(row pgx.Row) (*cdrv1.Comment, error) {
	var (
		c       cdrv1.Comment
		raw     []byte
		created time.Time
	)
	if err := row.Scan(&c.Id, &c.CallId, &c.TypeId, &raw, &c.Author, &created); err != nil {
		return nil, err
	}
	c.Values = &structpb.Struct{}
	if err := protojson.Unmarshal(raw, c.Values); err != nil {
		return nil, fmt.Errorf("comment %s: values: %w", c.Id, err)
	}
	c.CreatedAt = timestamppb.New(created)
	return &c, nil
}

// AddComment validates c (its type_id, values and author) against the
// account's comment type and stores it on the account's recorded call.
func (s *Store) AddComment(ctx context.Context, account, callID string, c *cdrv1.Comment, at time.Time) (*cdrv1.Comment, error) {
	if callID == "" {
		return nil, ErrInvalidArgument.WithMsg("call_id is required")
	}
	if c.GetTypeId() == "" {
		return nil, invalidComment("comment.type_id is required")
	}
	author := strings.TrimSpace(c.GetAuthor())
	if n := utf8.RuneCountInString(author); n > MaxAuthor {
		return nil, invalidComment("author has %d characters, at most %d", n, MaxAuthor)
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("add comment to %s: %w", callID, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var found bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cdr.cdrs WHERE call_id = $1 AND account_id = $2)`,
		callID, account).Scan(&found); err != nil {
		return nil, fmt.Errorf("add comment to %s: %w", callID, err)
	}
	if !found {
		return nil, ErrCdrNotFound.WithMsg(fmt.Sprintf("no record of call %q", callID))
	}
	// FOR SHARE: the type cannot change until the comment is in.
	t, err := scanCommentType(tx.QueryRow(ctx, `SELECT `+commentTypeCols+` FROM cdr.comment_types
WHERE id = $1 AND account_id = $2 FOR SHARE`, c.GetTypeId(), account))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, typeNotFound(c.GetTypeId())
	}
	if err != nil {
		return nil, fmt.Errorf("add comment to %s: %w", callID, err)
	}
	values, err := checkValues(t, c.GetValues())
	if err != nil {
		return nil, err
	}
	raw, err := protojson.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("add comment to %s: %w", callID, err)
	}
	out, err := scanComment(tx.QueryRow(ctx, `INSERT INTO cdr.comments (id, account_id, call_id, type_id, "values", author, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+commentCols, ids.NewV7(), account, callID, t.GetId(), raw, author, at))
	if err != nil {
		return nil, fmt.Errorf("add comment to %s: %w", callID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("add comment to %s: %w", callID, err)
	}
	return out, nil
}

// Comments returns the comments on one of the account's recorded calls,
// oldest first.
func (s *Store) Comments(ctx context.Context, account, callID string) ([]*cdrv1.Comment, error) {
	if callID == "" {
		return nil, ErrInvalidArgument.WithMsg("call_id is required")
	}
	byCall, err := s.CommentsFor(ctx, account, []string{callID})
	if err != nil {
		return nil, err
	}
	if cs := byCall[callID]; len(cs) > 0 {
		return cs, nil
	}
	var found bool
	if err := s.DB.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cdr.cdrs WHERE call_id = $1 AND account_id = $2)`,
		callID, account).Scan(&found); err != nil {
		return nil, fmt.Errorf("list comments of %s: %w", callID, err)
	}
	if !found {
		return nil, ErrCdrNotFound.WithMsg(fmt.Sprintf("no record of call %q", callID))
	}
	return []*cdrv1.Comment{}, nil
}

// CommentsFor returns the comments on the account's calls among callIDs
// (a page of records), by call id, each call's oldest first. Calls without
// comments, or not the account's, are absent from the map.
func (s *Store) CommentsFor(ctx context.Context, account string, callIDs []string) (map[string][]*cdrv1.Comment, error) {
	out := map[string][]*cdrv1.Comment{}
	if len(callIDs) == 0 {
		return out, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT `+commentCols+` FROM cdr.comments
WHERE account_id = $1 AND call_id = ANY($2::text[]) ORDER BY call_id, created_at, id`, account, callIDs)
	if err != nil {
		return nil, fmt.Errorf("list comments of %d calls: %w", len(callIDs), err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cdrv1.Comment, error) { return scanComment(r) })
	if err != nil {
		return nil, fmt.Errorf("list comments of %d calls: %w", len(callIDs), err)
	}
	for _, c := range cs {
		out[c.GetCallId()] = append(out[c.GetCallId()], c)
	}
	return out, nil
}

// DeleteComment deletes a comment on one of the account's calls.
func (s *Store) DeleteComment(ctx context.Context, account, callID, id string) error {
	if callID == "" || id == "" {
		return ErrInvalidArgument.WithMsg("call_id and id are required")
	}
	tag, err := s.DB.Exec(ctx, `DELETE FROM cdr.comments WHERE id = $1 AND call_id = $2 AND account_id = $3`, id, callID, account)
	if err != nil {
		return fmt.Errorf("delete comment %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrCommentNotFound.WithMsg(fmt.Sprintf("no comment %q on call %q", id, callID))
	}
	return nil
}
