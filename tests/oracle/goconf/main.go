// Command goconf-oracle reads configuration files with the goconf library
// that Seesaw v2 uses and prints what goconf returns for each, so that the
// Rust reader can be compared with it.
//
// Usage: goconf-oracle FILE...
//
// For each file it prints one line of JSON:
//
//	{"file": F, "read_error": {"kind": K, "line": L}}
//
// when goconf rejects the file, and otherwise
//
//	{"file": F, "sections": {SECTION: {"options": [...], "values": {OPTION: V}}}}
//
// where the options are those that GetOptions lists (sorted, without
// repeats) and V holds the result of GetRawString, GetString, GetBool,
// GetInt and of time.ParseDuration on the GetString result. Each result is
// {"ok": value} or {"error": kind}. JSON objects have sorted keys, so the
// output does not depend on Go's map order.
//
// Build it outside module mode against Debian's goconf package:
//
//	GO111MODULE=off GOPATH=$TMP:/usr/share/gocode go build -o goconf-oracle main.go
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	conf "github.com/dlintw/goconf"
)

// result is {"ok": value}, {"error": kind} or, for a value that failed to
// parse, {"error": kind, "value": value}.
type result map[string]interface{}

type values struct {
	Raw      result `json:"raw"`
	String   result `json:"string"`
	Bool     result `json:"bool"`
	Int      result `json:"int"`
	Duration result `json:"duration"`
}

type section struct {
	Options []string          `json:"options"`
	Values  map[string]values `json:"values"`
}

type readError struct {
	Kind string `json:"kind"`
	Line string `json:"line"`
}

type dump struct {
	File      string             `json:"file"`
	ReadError *readError         `json:"read_error,omitempty"`
	Sections  map[string]section `json:"sections,omitempty"`
}

// errorResult names the kind of a goconf error. Parse errors also carry the
// value that failed to parse.
func errorResult(err error) result {
	getErr, ok := err.(conf.GetError)
	if !ok {
		return result{"error": "other: " + err.Error()}
	}
	switch getErr.Reason {
	case conf.SectionNotFound:
		return result{"error": "section_not_found"}
	case conf.OptionNotFound:
		return result{"error": "option_not_found"}
	case conf.MaxDepthReached:
		return result{"error": "max_depth"}
	case conf.CouldNotParse:
		return result{"error": "could_not_parse_" + getErr.ValueType, "value": getErr.Value}
	}
	return result{"error": fmt.Sprintf("unknown reason %d", getErr.Reason)}
}

func okResult(value interface{}) result {
	return result{"ok": value}
}

func describe(path string) dump {
	out := dump{File: path}
	cfg, err := conf.ReadConfigFile(path)
	if err != nil {
		readErr, ok := err.(conf.ReadError)
		if !ok {
			out.ReadError = &readError{Kind: "other", Line: err.Error()}
			return out
		}
		kind := "could_not_parse"
		if readErr.Reason == conf.BlankSection {
			kind = "blank_section"
		}
		out.ReadError = &readError{Kind: kind, Line: readErr.Line}
		return out
	}

	out.Sections = make(map[string]section)
	for _, name := range cfg.GetSections() {
		options, err := cfg.GetOptions(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "GetOptions(%q): %v\n", name, err)
			os.Exit(1)
		}
		unique := make(map[string]bool)
		for _, option := range options {
			unique[option] = true
		}
		sorted := make([]string, 0, len(unique))
		for option := range unique {
			sorted = append(sorted, option)
		}
		sort.Strings(sorted)

		s := section{Options: sorted, Values: make(map[string]values)}
		for _, option := range sorted {
			var v values
			if raw, err := cfg.GetRawString(name, option); err != nil {
				v.Raw = errorResult(err)
			} else {
				v.Raw = okResult(raw)
			}
			str, err := cfg.GetString(name, option)
			if err != nil {
				v.String = errorResult(err)
				v.Duration = errorResult(err)
			} else {
				v.String = okResult(str)
				if d, err := time.ParseDuration(str); err != nil {
					v.Duration = result{"error": "invalid_duration"}
				} else {
					v.Duration = okResult(int64(d))
				}
			}
			if b, err := cfg.GetBool(name, option); err != nil {
				v.Bool = errorResult(err)
			} else {
				v.Bool = okResult(b)
			}
			if i, err := cfg.GetInt(name, option); err != nil {
				v.Int = errorResult(err)
			} else {
				v.Int = okResult(i)
			}
			s.Values[option] = v
		}
		out.Sections[name] = s
	}
	return out
}

func main() {
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetEscapeHTML(false)
	for _, path := range os.Args[1:] {
		if err := encoder.Encode(describe(path)); err != nil {
			fmt.Fprintf(os.Stderr, "encoding %s: %v\n", path, err)
			os.Exit(1)
		}
	}
}
