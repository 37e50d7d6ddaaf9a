package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// RunsDir is the directory of runs inside a state directory.
func RunsDir(stateDir string) string { return filepath.Join(stateDir, "runs") }

// RunDir is one run's directory.
func RunDir(stateDir, run string) string { return filepath.Join(RunsDir(stateDir), run) }

// Path is one run's journal.
func Path(stateDir, run string) string { return filepath.Join(RunDir(stateDir, run), FileName) }

// The milliseconds came later: ids without them (older runs) still read.
var runIDRe = regexp.MustCompile(`^\d{8}T\d{6}(\.\d{3})?-[0-9a-f]{4}$`)

// ValidRunID reports whether s looks like a run id (and so is safe as a path element).
func ValidRunID(s string) bool { return runIDRe.MatchString(s) }

// Runs lists the run ids of a state directory, oldest first.
func Runs(stateDir string) ([]string, error) {
	ents, err := os.ReadDir(RunsDir(stateDir))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || !ValidRunID(e.Name()) {
			continue
		}
		// a run directory without a journal is a run that never started
		// (apply -detach creates it for output.log before the run begins)
		if _, err := os.Stat(Path(stateDir, e.Name())); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Latest returns the newest run id, or an error when there is none.
func Latest(stateDir string) (string, error) {
	runs, err := Runs(stateDir)
	if err != nil {
		return "", err
	}
	if len(runs) == 0 {
		return "", fmt.Errorf("no runs in %s", RunsDir(stateDir))
	}
	return runs[len(runs)-1], nil
}

// Approval is runs/RUN/approvals/NODE.json, written by `upgrader approve`
// or `upgrader reject`: the decision on a gate (or an observation window).
type Approval struct {
	Node string    `json:"node"`
	By   string    `json:"by"` // user@hostname
	At   time.Time `json:"at"`
	// As is the name given with -as (checked against a gate's approvers
	// instead of the local user name).
	As string `json:"as,omitempty"`
	// Decision: "" or "approved", or "rejected" (then Reason says why).
	Decision string `json:"decision,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Decision values.
const (
	DecisionApproved = "approved"
	DecisionRejected = "rejected"
)

// Rejected reports whether the decision is a rejection.
func (a *Approval) Rejected() bool { return a.Decision == DecisionRejected }

// Name is who decided, as a gate's approvers name people: the -as name,
// else the user part of By.
func (a *Approval) Name() string {
	if a.As != "" {
		return a.As
	}
	user, _, _ := strings.Cut(a.By, "@")
	return user
}

// Decide records a decision on node in run. A decision that is there
// already is final: the other one is refused (repeating the same one is not).
func Decide(stateDir, run, node string, a Approval) (*Approval, error) {
	if !ValidRunID(run) {
		return nil, fmt.Errorf("%q is not a run id (like 20261128T101500-abcd)", run)
	}
	if node == "" || strings.ContainsAny(node, `/\`) || strings.HasPrefix(node, ".") {
		return nil, fmt.Errorf("%q is not a node address (like gate.go_primary)", node)
	}
	if _, err := os.Stat(RunDir(stateDir, run)); err != nil {
		return nil, fmt.Errorf("no run %s in %s", run, RunsDir(stateDir))
	}
	if old, err := ReadApproval(stateDir, run, node); err == nil && old != nil && old.Rejected() != a.Rejected() {
		what := "approved"
		if old.Rejected() {
			what = "rejected"
		}
		return nil, fmt.Errorf("%s was %s already by %s at %s", node, what, old.By, old.At.Format(time.RFC3339))
	}
	a.Node, a.At = node, time.Now().UTC().Truncate(time.Second)
	b, _ := json.MarshalIndent(a, "", "  ")
	if err := WriteFileAtomic(approvalPath(stateDir, run, node), append(b, '\n'), 0o600); err != nil {
		return nil, err
	}
	return &a, nil
}

func approvalPath(stateDir, run, node string) string {
	return filepath.Join(RunDir(stateDir, run), "approvals", node+".json")
}

// Approve records an approval of node in run.
func Approve(stateDir, run, node, by string) (*Approval, error) {
	return Decide(stateDir, run, node, Approval{By: by})
}

// ReadApproval returns the approval of node in run, nil when there is none.
func ReadApproval(stateDir, run, node string) (*Approval, error) {
	b, err := os.ReadFile(approvalPath(stateDir, run, node))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var a Approval
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("approval %s: %w", approvalPath(stateDir, run, node), err)
	}
	return &a, nil
}

// State is runs/RUN/state: a summary derived from the journal, rewritten by
// the run as it goes, so `status` of many runs need not read every journal.
type State struct {
	Run        string    `json:"run"`
	Status     string    `json:"status"` // running | done | failed | rolled_back | rollback_incomplete | interrupted
	Dir        string    `json:"dir,omitempty"`
	ConfigHash string    `json:"config_hash,omitempty"`
	PID        int       `json:"pid,omitempty"`
	By         string    `json:"by,omitempty"` // user@machine running it
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
}

// WriteState writes runs/RUN/state atomically.
func WriteState(stateDir string, st State) error {
	st.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(RunDir(stateDir, st.Run), "state"), append(b, '\n'), 0o600)
}

// ReadState reads runs/RUN/state.
func ReadState(stateDir, run string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(RunDir(stateDir, run), "state"))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
