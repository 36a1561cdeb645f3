package simengine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/veeksha-go/veeksha/pkg/simengine"
)

// Start an engine with the default profile, send one completion, and compare
// with the cost model.
func Example() {
	s, err := simengine.Start(simengine.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	body := `{"model":"llama3-8b-h100","prompt":"the quick brown fox","max_tokens":3,"ignore_eos":true}`
	resp, err := http.Post(s.BaseURL()+"/completions", "application/json", strings.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct{ Text string }
		Usage   struct{ PromptTokens, CompletionTokens int } `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("model %s, text %q\n", s.Model(), out.Choices[0].Text)
	fmt.Println("prompt tokens:", simengine.CountTokens("the quick brown fox"))

	p := s.Options().Profile
	fmt.Println("ideal TTFT of 2048 tokens:", p.LonePrefillTime(2048, 512).Round(time.Microsecond))
	fmt.Println("decode step of 8 x 1024:", p.DecodeStepTime(8, 8*1024).Round(time.Microsecond))
	// Output:
	// model llama3-8b-h100, text " tok0 tok1 tok2"
	// prompt tokens: 4
	// ideal TTFT of 2048 tokens: 65.558ms
	// decode step of 8 x 1024: 6.966ms
}
