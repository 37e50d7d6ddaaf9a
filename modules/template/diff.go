package template

import (
	"fmt"
	"strings"
)

// maxDiffCells bounds the LCS table (lines x lines); beyond it the plan says
// the files differ without a diff.
const maxDiffCells = 4 << 20

// unifiedDiff returns a unified diff of a -> b with 3 lines of context, ""
// when they are equal.
func unifiedDiff(aName, bName, a, b string) string {
	if a == b {
		return ""
	}
	al, bl := splitLines(a), splitLines(b)
	if (len(al)+1)*(len(bl)+1) > maxDiffCells {
		return fmt.Sprintf("--- %s\n+++ %s\n(files too large for a diff: %d and %d lines)\n", aName, bName, len(al), len(bl))
	}
	ops := diffOps(al, bl)
	if strings.Contains(b, Masked) {
		hideOldOfSensitive(ops)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	const ctx = 3
	// Group ops into hunks: runs of changes with up to 2*ctx equal lines between.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-ctx, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			j := end
			for j < len(ops) && ops[j].kind == ' ' {
				j++
			}
			if j == len(ops) || j-end > 2*ctx {
				break
			}
			end = j
		}
		stop := min(end+ctx, len(ops))
		h := ops[start:stop]
		aStart, bStart := h[0].ai+1, h[0].bi+1
		var na, nb int
		for _, o := range h {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		if na == 0 {
			aStart--
		}
		if nb == 0 {
			bStart--
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", aStart, na, bStart, nb)
		for _, o := range h {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
		i = stop
	}
	return out.String()
}

// hideOldOfSensitive hides the old side of every run of changed lines in
// which a new line holds a sensitive value: what such a line held before
// is likely the old secret (an old password, an old private key), whatever
// text now surrounds it.
func hideOldOfSensitive(ops []op) {
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		end, secret := i, false
		for ; end < len(ops) && ops[end].kind != ' '; end++ {
			secret = secret || ops[end].kind == '+' && strings.Contains(ops[end].text, Masked)
		}
		for j := i; j < end && secret; j++ {
			if ops[j].kind == '-' {
				ops[j].text = Masked
			}
		}
		i = end
	}
}

type op struct {
	kind   byte // ' ', '-', '+'
	text   string
	ai, bi int // line index in a and b where this op stands
}

// diffOps is a longest-common-subsequence diff, fine for configuration files.
func diffOps(a, b []string) []op {
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', b[j], i, j})
			j++
		}
	}
	return ops
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}
