package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write([]byte(`{"status":"x"}`))
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"healthcheck", "--url", srv.URL + "/healthz"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok") {
		t.Fatalf("healthy: %d %q %q", code, out.String(), errb.String())
	}
	status = http.StatusServiceUnavailable
	if code := run([]string{"healthcheck", "--url", srv.URL + "/readyz"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "503") {
		t.Fatalf("not ready: %d %q", code, errb.String())
	}
	srv.Close()
	if code := run([]string{"healthcheck", "--url", srv.URL}, &out, &errb); code != 1 {
		t.Fatalf("down: %d", code)
	}
	if code := run([]string{"healthcheck", "--url", "::"}, &out, &errb); code != 2 {
		t.Fatalf("bad url: %d", code)
	}
}
