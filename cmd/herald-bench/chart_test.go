package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestChartRendersValidSVG(t *testing.T) {
	results := `conns: a human summary line that the chart skips
{"bench":"fanout","label":"fanout-1k","subscribers":1000,"latency_ms":{"n":10,"p50":0.5,"p90":1,"p99":3.2,"max":9},"server_cpu_us_per_unit":7.5}
{"bench":"conns","label":"conns-15k","connections":15000,"bytes_per_conn":20000}
{"bench":"churn","label":"churn","server_cpu_us_per_unit":120,"cycle_latency_ms":{"n":5,"p50":2}}
{"bench":"client-events","label":"ce <500>","latency_ms":{"n":3,"p50":0.2,"p90":0.3,"p99":0.4,"max":0.5},"server_cpu_us_per_unit":11}
{"bench":"conns","label":"leak","connections":10000,"bytes_per_conn":21000,"rounds":[{"round":1,"rss_open":300000000,"rss_closed":100000000},{"round":2,"rss_open":310000000,"rss_closed":101000000}]}
not json {
`
	rows, err := readRows(strings.NewReader(results))
	if err != nil || len(rows) != 5 {
		t.Fatalf("readRows = %d rows, %v", len(rows), err)
	}
	var buf bytes.Buffer
	renderChart(&buf, "test", rows)
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid SVG: %v\n%s", err, buf.String())
		}
	}
	for _, want := range []string{"fanout-1k", "conns-15k (15000 conns)", "ce &lt;500&gt;", "Leak check", "polyline", "19.5 KB"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}
