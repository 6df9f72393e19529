package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	meta := AppendMeta(nil, "x-request-id", "abc")
	meta = AppendMeta(meta, "empty", "")
	h := Header{Kind: KindResponse, Priority: 7, ReqID: 42, CmdID: 1001, Timeout: 5000, Status: 13}
	b, err := AppendFrame(nil, &h, meta, "boom", []byte("body"), 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := FrameSize(b, 0)
	if err != nil || n != len(b) {
		t.Fatalf("FrameSize = %d, %v; want %d", n, err, len(b))
	}
	f, err := Parse(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Header != h || string(f.Msg) != "boom" || string(f.Body) != "body" {
		t.Fatalf("got %+v", f)
	}
	var got []string
	if err := RangeMeta(f.Meta, func(k, v []byte) bool { got = append(got, string(k)+"="+string(v)); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "x-request-id=abc" || got[1] != "empty=" {
		t.Fatalf("meta = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	good, _ := AppendFrame(nil, &Header{Kind: KindRequest, ReqID: 1, CmdID: 1}, nil, "", []byte("hi"), 0)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty", nil, 0, ErrTruncated},
		{"short prefix", []byte{0, 0}, 0, ErrTruncated},
		{"length below header", []byte{0, 0, 0, 3, 1, 1, 0}, 0, ErrTooSmall},
		{"over limit", good, MinFrameSize + 1, ErrTooLarge},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}, 0, ErrTooLarge},
		{"truncated body", good[:len(good)-1], 0, ErrTruncated},
		{"bad version", mod(func(b []byte) []byte { b[4] = 9; return b }), 0, ErrVersion},
		{"kind zero", mod(func(b []byte) []byte { b[5] = 0; return b }), 0, ErrKind},
		{"kind high", mod(func(b []byte) []byte { b[5] = 10; return b }), 0, ErrKind},
		{"sections overflow", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[24:], 3); return b }), 0, ErrSections},
		{"bad meta", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[24:], 2); return b }), 0, ErrMetadata},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.in, c.max)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse = %v, want %v", err, c.want)
			}
		})
	}
}

// TestPushKind checks the push kind, which the IM's client long link sends
// from server to client, parses like any other frame.
func TestPushKind(t *testing.T) {
	b, err := AppendFrame(nil, &Header{Kind: KindPush, CmdID: 1}, nil, "", []byte{8, 3}, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b, 0)
	if err != nil || f.Kind != KindPush || f.CmdID != 1 || !bytes.Equal(f.Body, []byte{8, 3}) {
		t.Fatalf("Parse = %+v, %v", f, err)
	}
	if KindPush.String() != "push" {
		t.Errorf("KindPush.String() = %q", KindPush.String())
	}
}

func TestAppendFrameLimits(t *testing.T) {
	if _, err := AppendFrame(nil, &Header{Kind: KindRequest}, nil, "", make([]byte, 100), MinFrameSize+99); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize body: %v", err)
	}
	if _, err := AppendFrame(nil, &Header{Kind: KindRequest}, make([]byte, 70000), "", nil, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize meta: %v", err)
	}
	long := string(make([]byte, 70000))
	b, err := AppendFrame(nil, &Header{Kind: KindResponse}, nil, long, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b, 1<<20)
	if err != nil || len(f.Msg) != 65535 {
		t.Fatalf("long message: len %d, %v", len(f.Msg), err)
	}
}

func TestTimeoutFromDuration(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want uint32
	}{
		{-time.Second, 1}, {0, 1}, {time.Nanosecond, 1}, {1500 * time.Microsecond, 1500},
		{MaxTimeout, 0xffffffff}, {100 * time.Hour, 0xffffffff},
	}
	for _, c := range cases {
		if got := TimeoutFromDuration(c.d); got != c.want {
			t.Errorf("TimeoutFromDuration(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

func TestHeaderCodecAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	meta := AppendMeta(nil, "k", "v")
	body := []byte("payload")
	h := Header{Kind: KindRequest, ReqID: 1, CmdID: 2, Timeout: 3}
	allocs := testing.AllocsPerRun(100, func() {
		b, _ := AppendFrame(buf[:0], &h, meta, "", body, 0)
		f, _ := Parse(b, 0)
		_ = RangeMeta(f.Meta, func(k, v []byte) bool { return true })
	})
	if allocs != 0 {
		t.Fatalf("encode+decode allocated %.1f times per frame, want 0", allocs)
	}
}

// FuzzParse feeds arbitrary bytes to the decoder: it must return a frame or
// an error, never panic, and a frame it accepts must re-encode to the same
// bytes.
func FuzzParse(f *testing.F) {
	good, _ := AppendFrame(nil, &Header{Kind: KindRequest, ReqID: 9, CmdID: 3, Timeout: 1000}, AppendMeta(nil, "a", "b"), "", []byte("hello"), 0)
	f.Add(good)
	f.Add(good[:10])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 1 << 16
		size, err := FrameSize(b, max)
		if err != nil {
			return
		}
		if size > max || size < MinFrameSize {
			t.Fatalf("FrameSize accepted %d", size)
		}
		if size > len(b) {
			if _, err := Parse(b, max); err == nil {
				t.Fatal("Parse accepted a truncated frame")
			}
			return
		}
		fr, err := Parse(b[:size], max)
		if err != nil {
			return
		}
		out, err := AppendFrame(nil, &fr.Header, fr.Meta, string(fr.Msg), fr.Body, max)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, b[:size]) {
			t.Fatalf("re-encode mismatch\n in %x\nout %x", b[:size], out)
		}
	})
}

func BenchmarkHeaderEncode(b *testing.B) {
	buf := make([]byte, 0, 256)
	h := Header{Kind: KindRequest, ReqID: 1, CmdID: 2, Timeout: 3}
	body := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendFrame(buf[:0], &h, nil, "", body, 0)
	}
}

func BenchmarkHeaderDecode(b *testing.B) {
	buf, _ := AppendFrame(nil, &Header{Kind: KindRequest, ReqID: 1, CmdID: 2, Timeout: 3}, AppendMeta(nil, "k", "v"), "", make([]byte, 16), 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(buf, 0); err != nil {
			b.Fatal(err)
		}
	}
}
