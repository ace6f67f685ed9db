// Package fieldmask applies the paths of a google.protobuf.FieldMask: an
// Update method copies the fields a client named from its request onto the
// stored message.
package fieldmask

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ErrUnknownPath is returned for a path that names no field.
var ErrUnknownPath = errors.New("not a field")

// Copy sets the field at a dotted path of dst ("limits.per_ip_per_hour")
// to src's value, or clears it when src does not have it. Intermediate
// fields must be singular messages.
func Copy(dst, src proto.Message, path string) error {
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	parts := strings.Split(path, ".")
	for i, name := range parts {
		fd := d.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return fmt.Errorf("%q: %w", path, ErrUnknownPath)
		}
		if i == len(parts)-1 {
			if s.Has(fd) {
				d.Set(fd, s.Get(fd))
			} else {
				d.Clear(fd)
			}
			return nil
		}
		if fd.Message() == nil || fd.IsList() || fd.IsMap() {
			return fmt.Errorf("%q: %w", path, ErrUnknownPath)
		}
		d = d.Mutable(fd).Message()
		s = s.Get(fd).Message()
	}
	return nil
}

// Present lists the top-level fields a message has set: the paths of an
// update that came without a mask.
func Present(m proto.Message) []string {
	var out []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		out = append(out, string(fd.Name()))
		return true
	})
	return out
}
