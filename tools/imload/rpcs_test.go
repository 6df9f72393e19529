package main

import (
	"bufio"
	"strings"
	"testing"
)

func TestSumSeries(t *testing.T) {
	text := `# HELP logicsvr_request_duration_seconds Request latency.
# TYPE logicsvr_request_duration_seconds histogram
logicsvr_request_duration_seconds_bucket{cmdid="1",le="0.001"} 3
logicsvr_request_duration_seconds_count{cmdid="1",method="/im.Send/Send",transport="rpc"} 12
logicsvr_request_duration_seconds_count{cmdid="2",method="/a{b}",transport="http"} 30.5
logicsvr_request_duration_seconds_count_other 1000
logicsvr_request_duration_seconds_count 7
`
	got, err := sumSeries(bufio.NewScanner(strings.NewReader(text)), requestCountMetric)
	if err != nil || got != 49.5 {
		t.Fatalf("sumSeries = %v, %v; want 49.5", got, err)
	}
	if _, err := sumSeries(bufio.NewScanner(strings.NewReader(requestCountMetric+`{a="b"} x`)), requestCountMetric); err == nil {
		t.Fatal("a sample that is not a number was summed")
	}
}
