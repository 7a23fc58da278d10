package peoplecli

import (
	"bytes"
	"testing"
)

func TestCellWidthAndClean(t *testing.T) {
	for s, want := range map[string]int{"abc": 3, "鲍勃": 4, "Zoë": 3, "e\u0301": 1, "ｱ": 1, "Ａ": 2, "한국": 4, "": 0} {
		if got := cellWidth(s); got != want {
			t.Errorf("cellWidth(%q) = %d, want %d", s, got, want)
		}
	}
	for in, want := range map[string]string{
		"plain 中文":      "plain 中文",
		"a\x1b[31mb":    `a\u001b[31mb`,
		"tab\there":     `tab\u0009here`,
		"\u202ertl":     `\u202ertl`,
		"line\u2028sep": `line\u2028sep`,
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTableAlignsWideCharacters(t *testing.T) {
	tb := &table{}
	tb.add("NAME", "X")
	tb.add("鲍勃", "1")
	tb.add("", "2")
	var b bytes.Buffer
	if err := tb.write(&b); err != nil {
		t.Fatal(err)
	}
	want := "NAME  X\n鲍勃  1\n-     2\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
