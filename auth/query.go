package auth

import (
	"net/url"
	"slices"
	"strings"
)

// param is one query parameter with its key lower-cased and both parts
// URL-decoded.
type param struct{ key, value string }

// query is a request's parameters in canonical form: sorted by key in byte
// order, one entry per key, the values of a repeated key joined with "," in the
// order they were sent.
type query []param

// parseRawQuery decodes a raw query string into params in wire order. Pairs are
// split on '&' only (';' is legal in channel names), keys are lower-cased, and
// keys and values are URL-decoded with '+' as space, because PHP percent-encodes
// what Node and Go send raw and both must sign the same. A part that is not
// valid escaping is kept as sent. ok is false when there are more than limit
// non-empty pairs, so hostile input costs bounded work.
func parseRawQuery(raw string, limit int) (ps []param, ok bool) {
	ps = make([]param, 0, min(strings.Count(raw, "&")+1, limit))
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if len(ps) == limit {
			return nil, false
		}
		k, v, _ := strings.Cut(pair, "=")
		ps = append(ps, param{strings.ToLower(queryUnescape(k)), queryUnescape(v)})
	}
	return ps, true
}

// valuesParams lists v as params in the order url.Values.Encode puts them on
// the wire (keys sorted, values in order), so that a query signed from v and
// one parsed from v.Encode() canonicalise identically.
func valuesParams(v url.Values) []param {
	keys := make([]string, 0, len(v))
	n := 0
	for k, vs := range v {
		keys = append(keys, k)
		n += len(vs)
	}
	slices.Sort(keys)
	ps := make([]param, 0, n)
	for _, k := range keys {
		lk := strings.ToLower(k)
		for _, val := range v[k] {
			ps = append(ps, param{lk, val})
		}
	}
	return ps
}

func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// newQuery sorts ps by key and merges repeated keys, reusing ps's storage.
func newQuery(ps []param) query {
	slices.SortStableFunc(ps, func(a, b param) int { return strings.Compare(a.key, b.key) })
	out := ps[:0]
	for i := 0; i < len(ps); {
		j := i + 1
		for j < len(ps) && ps[j].key == ps[i].key {
			j++
		}
		p := ps[i]
		if j-i > 1 {
			p.value = joinValues(ps[i:j])
		}
		out = append(out, p)
		i = j
	}
	return query(out)
}

// joinValues joins the values of ps with ",", PHP's convention for a repeated
// parameter.
func joinValues(ps []param) string {
	n := len(ps) - 1
	for _, p := range ps {
		n += len(p.value)
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.value)
	}
	return b.String()
}

// get returns the value of key and whether it was present.
func (q query) get(key string) (string, bool) {
	i, found := slices.BinarySearchFunc(q, key, func(p param, k string) int { return strings.Compare(p.key, k) })
	if !found {
		return "", false
	}
	return q[i].value, true
}

// canonical returns the signed form of q: every parameter but auth_signature as
// key=value, joined with '&', values unescaped.
func (q query) canonical() string {
	n := 0
	for _, p := range q {
		n += len(p.key) + len(p.value) + 2
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range q {
		if p.key == "auth_signature" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}
