package throttle

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	budget := func(n float64, w string) map[string]any { return map[string]any{"failures": n, "window": w} }
	tests := []struct {
		name string
		ext  any
		want *Rule // nil: refused, with an error containing err
		err  string
	}{
		{"both", map[string]any{"per-account": budget(10, "15m"), "per-address": budget(50, "15m")},
			&Rule{PerAccount: &Budget{10, 15 * time.Minute}, PerAddress: &Budget{50, 15 * time.Minute}}, ""},
		{"one", map[string]any{"per-address": budget(3, "1h")}, &Rule{PerAddress: &Budget{3, time.Hour}}, ""},
		{"not an object", "10/15m", nil, "must be an object"},
		{"no budget", map[string]any{}, nil, "declares no budget"},
		{"unknown budget", map[string]any{"per-day": budget(1, "1m")}, nil, "unknown budget"},
		{"fractional", map[string]any{"per-account": budget(1.5, "1m")}, nil, "whole number"},
		{"zero", map[string]any{"per-account": budget(0, "1m")}, nil, "whole number"},
		{"extra field", map[string]any{"per-account": map[string]any{"failures": 1.0, "window": "1m", "x": 1}}, nil, "want {failures"},
		{"bad window", map[string]any{"per-account": budget(1, "soon")}, nil, "window"},
		{"window past the pruning", map[string]any{"per-account": budget(1, "2h")}, nil, "at most 1h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.ext)
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse = %+v, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !same(got.PerAccount, tt.want.PerAccount) || !same(got.PerAddress, tt.want.PerAddress) {
				t.Errorf("Parse = %+v / %+v, want %+v / %+v", got.PerAccount, got.PerAddress, tt.want.PerAccount, tt.want.PerAddress)
			}
		})
	}
}

func same(a, b *Budget) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }
