package session

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A session with the simulated engine knows its settings, scrapes the
// engine's metrics, and stops the engine on Close.
func TestOpenSim(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), Config{APIBase: "sim", Seed: 7, NoPromptSalt: true})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Settings
	if !strings.HasPrefix(st.Server, "sim:") || st.Model == "" || st.PromptSalt || st.PromptNonce != 0 || st.Endpoint != "chat" {
		t.Errorf("settings %+v", st)
	}
	if err := s.Calibrate(t.Context(), []int{64, 200}); err != nil {
		t.Fatal(err)
	}
	if s.Settings.LengthSource == "" {
		t.Error("no length source after calibration")
	}
	d := s.Deps(t.Context())
	if d.Sender == nil || d.Prompts == nil || d.Server == nil || d.Meta.Settings.Model != st.Model {
		t.Errorf("deps %+v", d)
	}
	base := s.Client.Root()
	s.Close()
	if _, err := http.Get(base + "/v1/models"); err == nil {
		t.Error("the simulated engine still answers after Close")
	}
}

// Problems the user fixes are *Error values with a hint; an interrupt is
// not one of them.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/v1"
	ln.Close()
	noModels := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	t.Cleanup(noModels.Close)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown profile", Config{APIBase: "sim:no-such-profile"}, "--api-base sim:no-such-profile"},
		{"nothing listening", Config{APIBase: closed}, "no server is listening at --api-base"},
		{"no models", Config{APIBase: noModels.URL + "/v1"}, "lists no models: name one with --model"},
		{"password redacted", Config{APIBase: "http://user:secret@" + strings.TrimPrefix(closed, "http://")}, "user:xxxxx@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Open(t.Context(), tc.cfg)
			var se *Error
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want an *Error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the password is in %q", err)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = Open(ctx, Config{APIBase: "sim"})
	var se *Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &se) {
		t.Errorf("interrupted Open: %v, want context.Canceled and no *Error", err)
	}
}
