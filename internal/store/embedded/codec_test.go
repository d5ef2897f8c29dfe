package embedded

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

func TestCounterRoundTrip(t *testing.T) {
	for _, c := range []counterRecord{
		{},
		{start: 1, window: 2, count: -3},
		{start: 1 << 62, window: 1 << 63, count: 1 << 40}, // expiry saturates
	} {
		got, err := decodeCounter(encodeCounter(c))
		if err != nil || got != c {
			t.Errorf("round trip of %+v = %+v, %v", c, got, err)
		}
	}
	if exp := (counterRecord{start: 1 << 63, window: 1 << 63}).expiry(); exp != 1<<64-1 {
		t.Errorf("expiry did not saturate: %d", exp)
	}
}

func TestKVRoundTrip(t *testing.T) {
	exp := expiryAt(time.Unix(100, 0), time.Second)
	rec := encodeKV(exp, []byte("value"))
	gotExp, v, err := decodeKV(rec)
	if err != nil || gotExp != exp || string(v) != "value" {
		t.Fatalf("decodeKV = %d, %q, %v", gotExp, v, err)
	}
	if !expired(exp, time.Unix(101, 0)) || expired(exp, time.Unix(100, 999_999_999)) || expired(0, time.Now()) {
		t.Fatal("expired() disagrees with the TTL")
	}
	k := expiryKey(exp, kindKV, []byte("key"))
	gotExp, kind, key, err := decodeExpiryKey(k)
	if err != nil || gotExp != exp || kind != kindKV || string(key) != "key" {
		t.Fatalf("decodeExpiryKey = %d, %c, %q, %v", gotExp, kind, key, err)
	}
}

// FuzzDecodeRecord feeds arbitrary bytes, as a damaged file would hold, to
// every record decoder: each must return an error or a value that
// round-trips, never panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, rec []byte) {
		if exp, v, err := decodeKV(rec); err == nil {
			if !bytes.Equal(encodeKV(exp, v), rec) {
				t.Fatal("kv record does not round-trip")
			}
		}
		if c, err := decodeCounter(rec); err == nil {
			if !bytes.Equal(encodeCounter(c), rec) {
				t.Fatal("counter record does not round-trip")
			}
			_ = c.expiry()
		}
		if exp, kind, key, err := decodeExpiryKey(rec); err == nil {
			if !bytes.Equal(expiryKey(exp, kind, key), rec) {
				t.Fatal("expiry key does not round-trip")
			}
		}
		if d, err := decodeDecision(rec); err == nil {
			if err := d.Validate(); err != nil {
				t.Fatalf("decoded decision is invalid: %v", err)
			}
			data, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			again, err := decodeDecision(data)
			if err != nil || !sameDecisionFields(again, d) {
				t.Fatalf("decision does not round-trip: %+v vs %+v (%v)", again, d, err)
			}
		}
		if e, err := decodeAudit(rec); err == nil {
			if _, err := json.Marshal(e); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func sameDecisionFields(a, b decision.Decision) bool {
	return a.Scope == b.Scope && a.Value == b.Value && a.Action == b.Action &&
		a.Reason == b.Reason && a.Source == b.Source &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}
