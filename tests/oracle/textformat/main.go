// Command oracle compares seesaw-rs's reading of a cluster.pb file with the
// reading of golang/protobuf v1.5 proto.UnmarshalText, the parser that
// Seesaw v2 itself uses for cluster.pb.
//
// Usage: oracle FILE.pb RUST.bin
//
// FILE.pb is the text input. RUST.bin is the binary encoding of the Cluster
// that seesaw-rs parsed from the same text; it is absent or empty when
// seesaw-rs rejected the text. The program prints exactly one line:
//
//	reject: <error>    proto.UnmarshalText failed; "reject: panic: ..." when
//	                   it panicked
//	accept             Go accepted, and there is no Rust encoding to compare
//	equal              both accepted and the messages are equal
//	differ: <details>  both accepted and the messages differ
//
// The message type comes from Go code that the test generates with protoc
// and protoc-gen-go from proto/config.proto into this package, so the
// program has no schema of its own. It exits non-zero only on usage or I/O
// errors.
package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strings"

	legacyproto "github.com/golang/protobuf/proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: oracle FILE.pb RUST.bin")
		os.Exit(2)
	}

	text, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "oracle: cannot read the text input: %v\n", err)
		os.Exit(2)
	}

	fromText := &Cluster{}
	if err := unmarshalText(string(text), fromText); err != nil {
		fmt.Printf("reject: %s\n", oneLine(err.Error()))
		return
	}

	encoded, err := os.ReadFile(os.Args[2])
	if os.IsNotExist(err) || (err == nil && len(encoded) == 0) {
		fmt.Println("accept")
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "oracle: cannot read the Rust encoding: %v\n", err)
		os.Exit(2)
	}

	fromRust := &Cluster{}
	if err := proto.Unmarshal(encoded, fromRust); err != nil {
		fmt.Printf("differ: the Rust encoding does not decode: %s\n", oneLine(err.Error()))
		return
	}

	// proto.Equal treats 0 and -0 as equal, so the walk below also runs when
	// it reports equality and catches a lost sign.
	difference := firstDifference(fromText.ProtoReflect(), fromRust.ProtoReflect(), "")
	if !proto.Equal(fromText, fromRust) && difference == "" {
		difference = "proto.Equal reports a difference that the field walk did not find"
	}
	if difference != "" {
		fmt.Printf("differ: %s\n", difference)
		return
	}
	fmt.Println("equal")
}

// unmarshalText runs proto.UnmarshalText and turns a panic into an error
// that starts with "panic:". Seesaw would crash on such input, which counts
// as rejecting it.
func unmarshalText(text string, message *Cluster) (err error) {
	defer func() {
		if recovered := recover(); recovered != nil {
			err = fmt.Errorf("panic: %v", recovered)
		}
	}()
	return legacyproto.UnmarshalText(text, message)
}

// firstDifference returns a description of the first field where go and
// rust differ, or "" when they match. Floats are compared bit for bit,
// except that any two NaNs match.
func firstDifference(goMessage, rustMessage protoreflect.Message, path string) string {
	fields := goMessage.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		field := fields.Get(i)
		name := path + string(field.Name())
		inGo, inRust := goMessage.Has(field), rustMessage.Has(field)
		if inGo != inRust {
			return fmt.Sprintf("%s: set in Go %v, set in Rust %v", name, inGo, inRust)
		}
		if !inGo {
			continue
		}

		if field.IsList() {
			goList, rustList := goMessage.Get(field).List(), rustMessage.Get(field).List()
			if goList.Len() != rustList.Len() {
				return fmt.Sprintf("%s: %d items in Go, %d in Rust", name, goList.Len(), rustList.Len())
			}
			for j := 0; j < goList.Len(); j++ {
				itemName := fmt.Sprintf("%s[%d]", name, j)
				if d := valueDifference(field, goList.Get(j), rustList.Get(j), itemName); d != "" {
					return d
				}
			}
			continue
		}

		if d := valueDifference(field, goMessage.Get(field), rustMessage.Get(field), name); d != "" {
			return d
		}
	}

	if len(goMessage.GetUnknown()) != 0 || len(rustMessage.GetUnknown()) != 0 {
		return fmt.Sprintf("%sunknown fields: %d bytes in Go, %d bytes in Rust",
			path, len(goMessage.GetUnknown()), len(rustMessage.GetUnknown()))
	}
	return ""
}

// valueDifference compares one singular value or list item of field.
func valueDifference(field protoreflect.FieldDescriptor, goValue, rustValue protoreflect.Value, name string) string {
	switch field.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return firstDifference(goValue.Message(), rustValue.Message(), name+".")
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		goFloat, rustFloat := goValue.Float(), rustValue.Float()
		if math.IsNaN(goFloat) && math.IsNaN(rustFloat) {
			return ""
		}
		if math.Float64bits(goFloat) != math.Float64bits(rustFloat) {
			return fmt.Sprintf("%s: Go %v, Rust %v", name, formatFloat(goFloat), formatFloat(rustFloat))
		}
	case protoreflect.BytesKind:
		if !bytes.Equal(goValue.Bytes(), rustValue.Bytes()) {
			return fmt.Sprintf("%s: Go %q, Rust %q", name, goValue.Bytes(), rustValue.Bytes())
		}
	case protoreflect.StringKind:
		if goValue.String() != rustValue.String() {
			return fmt.Sprintf("%s: Go %q, Rust %q", name, goValue.String(), rustValue.String())
		}
	default:
		if goValue.Interface() != rustValue.Interface() {
			return fmt.Sprintf("%s: Go %v, Rust %v", name, goValue.Interface(), rustValue.Interface())
		}
	}
	return ""
}

// formatFloat prints enough digits to tell apart two float32 values and
// the sign of zero.
func formatFloat(value float64) string {
	if value == 0 && math.Signbit(value) {
		return "-0"
	}
	return fmt.Sprintf("%.17g", value)
}

// oneLine keeps the output to one line per input, whatever the error says.
func oneLine(message string) string {
	return strings.Join(strings.Fields(message), " ")
}
