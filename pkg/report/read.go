package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/veeksha-go/veeksha/pkg/result"
)

// ReadJSON reads the JSON file at path into v.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// ReadRecords reads a requests.jsonl file; one that holds no request is an
// error.
func ReadRecords(path string) ([]result.Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	reqs, err := result.ReadJSONL(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(reqs) == 0 {
		return nil, errors.New(path + " holds no requests")
	}
	return reqs, nil
}
