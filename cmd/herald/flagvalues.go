package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// appVar marks the default app as customised whenever one of its settings is given, so Herald can
// warn that those settings are ignored when the config file lists apps.
func (o *options) appVar(v flag.Value) flag.Value {
	return funcValue{v, func() { o.defaultAppCustomized = true }}
}

type funcValue struct {
	flag.Value
	onSet func()
}

func (f funcValue) String() string {
	if f.Value == nil { // flag.PrintDefaults probes a zero value
		return ""
	}
	return f.Value.String()
}

func (f funcValue) Set(s string) error {
	f.onSet()
	return f.Value.Set(s)
}

func (f funcValue) IsBoolFlag() bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// value is a flag.Value over a field of options.
type value[T any] struct {
	p      *T
	parse  func(string) (T, error)
	isBool bool
}

func (v value[T]) String() string {
	if v.p == nil {
		return ""
	}
	return fmt.Sprint(*v.p)
}

func (v value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = x
	return nil
}

func (v value[T]) IsBoolFlag() bool { return v.isBool }

func stringVar(p *string) flag.Value {
	return value[string]{p: p, parse: func(s string) (string, error) { return s, nil }}
}

func intVar(p *int) flag.Value {
	return value[int]{p: p, parse: parseInt}
}

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("must be a whole number")
	}
	return n, nil
}

// optionalIntVar is intVar for a setting whose absence means something of its own: the field stays
// nil until the setting is given.
func optionalIntVar(p **int) flag.Value { return optionalInt{p} }

type optionalInt struct{ p **int }

func (v optionalInt) String() string {
	if v.p == nil || *v.p == nil {
		return ""
	}
	return strconv.Itoa(**v.p)
}

func (v optionalInt) Set(s string) error {
	n, err := parseInt(s)
	if err == nil {
		*v.p = &n
	}
	return err
}

// seconds is every duration setting: a number of seconds, fractions allowed (0.5), so config files
// and environment variables written with whole numbers keep working.
type seconds float64

// duration converts s, saturating instead of overflowing past about 292 years either way.
func (s seconds) duration() time.Duration {
	switch ns := float64(s) * float64(time.Second); {
	case ns >= math.MaxInt64:
		return math.MaxInt64
	case ns <= math.MinInt64:
		return math.MinInt64
	default:
		return time.Duration(ns)
	}
}

func secondsVar(p *seconds) flag.Value {
	return value[seconds]{p: p, parse: func(s string) (seconds, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, errors.New("must be a number of seconds")
		}
		return seconds(f), nil
	}}
}

func boolVar(p *bool) flag.Value {
	return value[bool]{p: p, isBool: true, parse: func(s string) (bool, error) {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return false, errors.New("must be true or false")
		}
		return b, nil
	}}
}

// listVar is a comma-separated list.
func listVar(p *[]string) flag.Value { return listValue{p} }

type listValue struct{ p *[]string }

func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v listValue) Set(s string) error {
	*v.p = nil
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*v.p = append(*v.p, f)
		}
	}
	return nil
}
