package observe

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The sampling command: one shell script per host per interval prints every
// metric and the new bytes of every followed log, framed by "@@" header lines.
// Log bytes are arbitrary, so each data segment ends with "\n@@end NONCE\n",
// a random nonce per script that no log line can guess.

const (
	// readCap bounds the bytes read from one log file in one sample, so a
	// runaway log cannot blow up a round trip; the rest is read next time.
	readCap = 4 << 20
	// maxLine is how much of one log line is matched and kept; longer lines
	// are matched on their first maxLine bytes.
	maxLine = 64 << 10
	// keepLines is how many matching lines (trimmed) are kept for the message.
	keepLines = 5
	// showLine is how many bytes of a matching line are shown.
	showLine = 200
)

// logCursor is where a followed log file is read next. Ino 0 means the file
// did not exist at the last look; it is then read from 0 once it appears.
type logCursor struct {
	Ino uint64 `json:"ino"`
	Off int64  `json:"off"`
}

// logReq is one log file to read on a host.
type logReq struct {
	Path  string
	Start bool // first look: only note inode and size (follow from the window's start)
	Cur   logCursor
	Cap   int64
	Re    *regexp.Regexp
}

// probeReq is one host's sampling command.
type probeReq struct {
	Nonce     string
	DiskPaths []string
	Logs      []logReq
}

// diskUse is the use of the filesystem holding one watched path.
type diskUse struct {
	Path    string
	Mount   string
	Percent float64
	OK      bool // false: df failed (the path does not exist)
}

// logResult is what one sample saw of one log file.
type logResult struct {
	Next       logCursor
	Size       int64 // current file size; -1 when missing
	Matches    int   // matching lines read this time
	Lines      []string
	Rotated    bool  // the inode changed since the last look
	Truncated  bool  // same inode, smaller than the cursor
	Behind     int64 // bytes left to read (more than readCap arrived)
	Unreadable bool  // exists, but the remote user may not read it
}

// rawSample is one host's answer to the sampling command.
type rawSample struct {
	CPUBusy, CPUTotal uint64
	CPUOK             bool
	MemPercent        float64
	MemOK             bool
	Load1             float64
	LoadOK            bool
	Disk              []diskUse
	Logs              []logResult
}

func newNonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// script returns the shell command for req. It uses only POSIX sh and
// coreutils (stat -c, tail -c, head -c, df -P) and reads /proc.
func (req *probeReq) script() string {
	var b strings.Builder
	b.WriteString("export LC_ALL=C\n")
	fmt.Fprintf(&b, "e(){ printf '\\n@@end %s\\n'; }\n", req.Nonce)
	// r FILE OFFSET CAP SIZE: the bytes from OFFSET, nothing when SIZE says there are none.
	b.WriteString("r(){ [ \"$4\" -gt \"$2\" ] && tail -c +$(($2+1)) -- \"$1\" 2>/dev/null | head -c $3; e; }\n")
	b.WriteString("s(){ stat -L -c '%i %s' -- \"$1\" 2>/dev/null || echo '0 -1'; }\n")
	// Shell built-ins where they do: a sample of many hosts is mostly forks.
	b.WriteString("echo @@stat; { read -r l < /proc/stat && echo \"$l\"; } 2>/dev/null\n")
	b.WriteString("echo @@mem; { while read -r k v u; do case $k in MemTotal:|MemAvailable:) echo \"$k $v\";; esac; done < /proc/meminfo; } 2>/dev/null\n")
	b.WriteString("echo @@load; { read -r l < /proc/loadavg && echo \"$l\"; } 2>/dev/null\n")
	// One df for every watched path that exists; the header lists which.
	b.WriteString("set --; d=\n")
	for i, p := range req.DiskPaths {
		fmt.Fprintf(&b, "[ -e %s ] && { set -- \"$@\" %s; d=\"$d %d\"; }\n", shQuote(p), shQuote(p), i)
	}
	b.WriteString("echo \"@@df$d\"; [ $# -gt 0 ] && df -P -k -- \"$@\" 2>/dev/null\n")
	for i, l := range req.Logs {
		fmt.Fprintf(&b, "f=%s; set -- $(s \"$f\"); i=$1; z=$2; echo \"@@log %d $i $z\"\n", shQuote(l.Path), i)
		// stat works on a file the user may not read: say so, or it looks quiet.
		fmt.Fprintf(&b, "[ \"$i\" != 0 ] && [ ! -r \"$f\" ] && echo '@@noread %d'\n", i)
		if l.Start {
			continue
		}
		ino, off, c := l.Cur.Ino, l.Cur.Off, l.Cap
		if ino == 0 {
			// The file was missing: it is new when it appears, read it from 0.
			fmt.Fprintf(&b, "if [ \"$i\" != 0 ]; then echo '@@data %d new 0'; r \"$f\" 0 %d \"$z\"; fi\n", i, c)
			continue
		}
		// Same file: read on from the cursor, from 0 when it shrank (truncated).
		fmt.Fprintf(&b, "if [ \"$i\" = %d ]; then o=%d; if [ \"$z\" -lt $o ]; then o=0; echo '@@trunc %d'; fi; echo \"@@data %d cur $o\"; r \"$f\" $o %d \"$z\"\n", ino, off, i, i, c)
		// Another inode (or none): finish the rotated file at PATH.1 first,
		// then read the new file from 0 once the old one is exhausted.
		fmt.Fprintf(&b, "else n=1; set -- $(s \"$f.1\"); if [ \"$1\" = %d ] && [ \"$2\" -ge %d ]; then echo \"@@data %d old %d $2\"; r \"$f.1\" %d %d \"$2\"; if [ $(($2-%d)) -gt %d ]; then n=0; fi; fi\n", ino, off, i, off, off, c, off, c)
		fmt.Fprintf(&b, "if [ $n = 1 ] && [ \"$i\" != 0 ]; then echo '@@data %d new 0'; r \"$f\" 0 %d \"$z\"; fi; fi\n", i, c)
	}
	b.WriteString("echo @@done\n")
	return b.String()
}

// errProtocol marks output that does not follow the script's framing.
var errProtocol = errors.New("unexpected sampling output")

// parseProbe reads the script's output as it streams in. Log lines are
// matched one by one and never kept beyond the last few matches, so memory
// does not grow with the amount of log read.
func parseProbe(r io.Reader, req *probeReq) (*rawSample, error) {
	br := bufio.NewReaderSize(r, maxLine)
	out := &rawSample{Disk: make([]diskUse, len(req.DiskPaths)), Logs: make([]logResult, len(req.Logs))}
	for i, p := range req.DiskPaths {
		out.Disk[i].Path = p
	}
	for i, l := range req.Logs {
		out.Logs[i] = logResult{Next: l.Cur, Size: -1}
	}
	var mem struct{ total, avail, n int }
	marker := []byte("@@end " + req.Nonce + "\n")
	done := false
	for !done {
		hdr, err := readHeader(br)
		if err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("%w: output ends before @@done", errProtocol)
			}
			return nil, err
		}
		f := strings.Fields(hdr)
		switch {
		case hdr == "@@done":
			done = true
		case hdr == "@@stat":
			for _, line := range bodyLines(br) {
				out.CPUBusy, out.CPUTotal, out.CPUOK = parseStat(line)
			}
		case hdr == "@@mem":
			for _, line := range bodyLines(br) {
				k, v, ok := parseMemLine(line)
				switch {
				case !ok:
				case k == "MemTotal":
					mem.total, mem.n = v, mem.n+1
				case k == "MemAvailable":
					mem.avail, mem.n = v, mem.n+1
				}
			}
			if mem.n == 2 && mem.total > 0 {
				out.MemPercent = round1(float64(mem.total-mem.avail) * 100 / float64(mem.total))
				out.MemOK = true
			}
		case hdr == "@@load":
			for _, line := range bodyLines(br) {
				if lf := strings.Fields(line); len(lf) > 0 {
					if v, err := strconv.ParseFloat(lf[0], 64); err == nil {
						out.Load1, out.LoadOK = v, true
					}
				}
			}
		case len(f) >= 1 && f[0] == "@@df":
			// "@@df 0 2": df lines follow for watched paths 0 and 2, in order.
			var idx []int
			for _, x := range f[1:] {
				i, err := strconv.Atoi(x)
				if err != nil || i < 0 || i >= len(out.Disk) {
					return nil, fmt.Errorf("%w: %q", errProtocol, hdr)
				}
				idx = append(idx, i)
			}
			k := 0
			for _, line := range bodyLines(br) {
				mount, pct, ok := parseDf(line)
				if !ok {
					continue // the header, or an unreadable line
				}
				if k < len(idx) {
					d := &out.Disk[idx[k]]
					d.Mount, d.Percent, d.OK = mount, pct, true
				} else {
					out.Disk = append(out.Disk, diskUse{Mount: mount, Percent: pct, OK: true})
				}
				k++
			}
		case len(f) == 4 && f[0] == "@@log":
			i, err1 := strconv.Atoi(f[1])
			ino, err2 := strconv.ParseUint(f[2], 10, 64)
			size, err3 := strconv.ParseInt(f[3], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil || i < 0 || i >= len(req.Logs) {
				return nil, fmt.Errorf("%w: %q", errProtocol, hdr)
			}
			lr, l := &out.Logs[i], &req.Logs[i]
			lr.Size = size
			switch {
			case l.Start && size >= 0:
				lr.Next = logCursor{Ino: ino, Off: size} // follow from now on
			case l.Start:
				lr.Next = logCursor{}
			case ino != l.Cur.Ino:
				lr.Rotated = l.Cur.Ino != 0
				// Until a data segment says otherwise: the new file (or none) from 0.
				lr.Next = logCursor{Ino: ino}
			}
		case len(f) == 2 && f[0] == "@@noread":
			i, err := strconv.Atoi(f[1])
			if err != nil || i < 0 || i >= len(req.Logs) {
				return nil, fmt.Errorf("%w: %q", errProtocol, hdr)
			}
			out.Logs[i].Unreadable = true
		case len(f) == 2 && f[0] == "@@trunc":
			i, err := strconv.Atoi(f[1])
			if err != nil || i < 0 || i >= len(req.Logs) {
				return nil, fmt.Errorf("%w: %q", errProtocol, hdr)
			}
			out.Logs[i].Truncated = true
		case len(f) >= 4 && f[0] == "@@data":
			i, err1 := strconv.Atoi(f[1])
			off, err2 := strconv.ParseInt(f[3], 10, 64)
			if err1 != nil || err2 != nil || i < 0 || i >= len(req.Logs) {
				return nil, fmt.Errorf("%w: %q", errProtocol, hdr)
			}
			// The offsets are the ones this request asked for; anything else
			// would move the cursor backwards or skip lines.
			l := &req.Logs[i]
			want := l.Cur.Off
			if f[2] == "new" || (f[2] == "cur" && out.Logs[i].Truncated) {
				want = 0
			}
			if l.Start || off != want {
				return nil, fmt.Errorf("%w: %q", errProtocol, hdr)
			}
			if err := readData(br, marker, f[2], f[4:], off, l, &out.Logs[i]); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: %q", errProtocol, truncate(hdr, 80))
		}
	}
	return out, nil
}

// readData reads one data segment of a log and advances the cursor past the
// lines it consumed. A trailing partial line is left for the next sample,
// unless it is the end of a rotated file or a single line longer than the cap.
func readData(br *bufio.Reader, marker []byte, kind string, rest []string, off int64, l *logReq, lr *logResult) error {
	var (
		pend     []byte // the last line read; only known to be complete when another follows
		pendN    int64
		havePend bool
		consumed int64
	)
	match := func(line []byte) {
		if l.Re == nil || !l.Re.Match(line) {
			return
		}
		lr.Matches++
		if len(lr.Lines) == keepLines {
			copy(lr.Lines, lr.Lines[1:])
			lr.Lines = lr.Lines[:keepLines-1]
		}
		lr.Lines = append(lr.Lines, showable(line))
	}
	for {
		line, n, err := readLine(br)
		if err != nil {
			return fmt.Errorf("%w: log segment of %s ends early: %v", errProtocol, l.Path, err)
		}
		if n == int64(len(marker)) && bytes.Equal(line, marker) {
			break
		}
		if havePend {
			match(bytes.TrimSuffix(pend, []byte("\n")))
			consumed += pendN
		}
		pend, pendN, havePend = append(pend[:0], line...), n, true
	}
	if !havePend {
		return fmt.Errorf("%w: log segment of %s has no separator", errProtocol, l.Path)
	}
	// The last line's newline is the separator's: what precedes it is a
	// partial line (empty when the data ended with a newline).
	partial := bytes.TrimSuffix(pend, []byte("\n"))
	partialN := pendN - 1
	switch kind {
	case "old":
		var oldSize int64
		if len(rest) == 1 {
			oldSize, _ = strconv.ParseInt(rest[0], 10, 64)
		}
		exhausted := oldSize-off <= l.Cap
		if exhausted && partialN > 0 {
			match(partial) // the rotated file will not grow: its last line is whole
			consumed += partialN
		}
		lr.Rotated = true
		if exhausted {
			lr.Next = logCursor{Ino: lr.Next.Ino} // the new file (or none), from 0
		} else {
			lr.Next = logCursor{Ino: l.Cur.Ino, Off: off + consumed}
			lr.Behind = oldSize - lr.Next.Off
		}
		return nil
	case "cur", "new":
		if consumed == 0 && partialN >= l.Cap {
			match(partial) // one line longer than the cap: take it, or we never move on
			consumed += partialN
		}
		lr.Next.Off = off + consumed
		if lr.Size > lr.Next.Off {
			lr.Behind = lr.Size - lr.Next.Off - partialN
			if lr.Behind < 0 {
				lr.Behind = 0
			}
		}
		return nil
	}
	return fmt.Errorf("%w: data kind %q", errProtocol, kind)
}

// readLine returns the next line (with its newline) up to maxLine bytes of
// content and the line's full length; the rest of a longer line is skipped.
// The slice is valid until the next read.
func readLine(br *bufio.Reader) ([]byte, int64, error) {
	line, err := br.ReadSlice('\n')
	n := int64(len(line))
	if err == nil {
		return line, n, nil
	}
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, n, err
	}
	head := append([]byte(nil), line...)
	for err == bufio.ErrBufferFull {
		var more []byte
		more, err = br.ReadSlice('\n')
		n += int64(len(more))
	}
	if err != nil {
		return nil, n, io.ErrUnexpectedEOF
	}
	return append(head, '\n'), n, nil
}

// readHeader returns the next "@@..." line without its newline.
func readHeader(br *bufio.Reader) (string, error) {
	for {
		line, _, err := readLine(br)
		if err != nil {
			return "", err
		}
		s := strings.TrimRight(string(line), "\r\n")
		if s == "" {
			continue
		}
		if !strings.HasPrefix(s, "@@") {
			return "", fmt.Errorf("%w: %q", errProtocol, truncate(s, 80))
		}
		return s, nil
	}
}

// bodyLines returns the lines up to the next header line.
func bodyLines(br *bufio.Reader) []string {
	var out []string
	for {
		p, err := br.Peek(2)
		if err != nil || string(p) == "@@" {
			return out
		}
		line, _, err := readLine(br)
		if err != nil {
			return out
		}
		out = append(out, strings.TrimRight(string(line), "\r\n"))
	}
}

// parseStat reads the aggregate "cpu" line of /proc/stat: busy and total
// jiffies. Busy excludes idle and iowait; guest time is already in user.
func parseStat(line string) (busy, total uint64, ok bool) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	var v [8]uint64
	for i := 1; i < len(f) && i <= 8; i++ {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, 0, false
		}
		v[i-1] = n
	}
	for _, n := range v {
		total += n
	}
	idle := v[3] + v[4]
	return total - idle, total, true
}

// cpuPercent is the busy share between two /proc/stat readings.
func cpuPercent(prevBusy, prevTotal, busy, total uint64) (float64, bool) {
	if total <= prevTotal || busy < prevBusy {
		return 0, false
	}
	return round1(float64(busy-prevBusy) * 100 / float64(total-prevTotal)), true
}

// parseMemLine reads "MemTotal:  16318180 kB".
func parseMemLine(line string) (string, int, bool) {
	k, rest, ok := strings.Cut(line, ":")
	if !ok {
		return "", 0, false
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", 0, false
	}
	v, err := strconv.Atoi(f[0])
	return k, v, err == nil
}

// parseDf reads one `df -P -k` line. The filesystem name and the mount point
// may hold spaces, so fields are found around the capacity column ("42%").
func parseDf(line string) (mount string, pct float64, ok bool) {
	f := strings.Fields(line)
	for k := 3; k < len(f)-1; k++ {
		if !strings.HasSuffix(f[k], "%") {
			continue
		}
		used, err1 := strconv.ParseFloat(f[k-2], 64)
		avail, err2 := strconv.ParseFloat(f[k-1], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if used+avail <= 0 {
			return strings.Join(f[k+1:], " "), 0, true
		}
		return strings.Join(f[k+1:], " "), round1(used * 100 / (used + avail)), true
	}
	return "", 0, false
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// showable trims a log line for a message: no surrounding space, at most
// showLine bytes, valid UTF-8.
func showable(line []byte) string {
	s := strings.TrimSpace(string(line))
	return truncate(strings.ToValidUTF8(s, "?"), showLine)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
