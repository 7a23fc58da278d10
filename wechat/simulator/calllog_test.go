package simulator

import (
	"strconv"
	"testing"
)

// TestCallLogKeepsTheNewestInOrder: past maxCalls the log drops the oldest
// call for each new one and still lists them oldest first.
func TestCallLogKeepsTheNewestInOrder(t *testing.T) {
	s := New(Config{})
	const extra = 25
	for i := range maxCalls + extra {
		endpoint := "/even"
		if i%2 == 1 {
			endpoint = "/odd"
		}
		s.record(Call{Endpoint: endpoint, UserKey: strconv.Itoa(i)})
	}
	calls := s.Calls()
	if len(calls) != maxCalls {
		t.Fatalf("%d calls kept, want %d", len(calls), maxCalls)
	}
	for i, c := range calls {
		if want := strconv.Itoa(i + extra); c.UserKey != want {
			t.Fatalf("calls[%d] is call %s, want %s (oldest first)", i, c.UserKey, want)
		}
	}
	if odd, even := s.CallCount("/odd"), s.CallCount("/even"); odd+even != maxCalls || odd != maxCalls/2 {
		t.Fatalf("CallCount: odd %d, even %d", odd, even)
	}
	s.ResetCalls()
	s.record(Call{Endpoint: "/after", UserKey: "x"})
	if calls := s.Calls(); len(calls) != 1 || calls[0].UserKey != "x" {
		t.Fatalf("after ResetCalls: %+v", calls)
	}
}

// BenchmarkRecordFullLog is one request recorded once the call log is full
// (every request after the simulator's first 10,000).
func BenchmarkRecordFullLog(b *testing.B) {
	s := New(Config{})
	for range maxCalls {
		s.record(Call{Endpoint: "/sns/userinfo"})
	}
	b.ReportAllocs()
	for b.Loop() {
		s.record(Call{Endpoint: "/sns/userinfo", AppID: "wx0d0e0v0000000001", UserKey: "load00001"})
	}
}
