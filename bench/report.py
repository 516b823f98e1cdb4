#!/usr/bin/env python3
"""report.py - the one summary of `make bench`.

    python3 bench/report.py [--out DIR] [FILE ...]

Reads the outputs of the benchmark programs (the files given, or standard
input with no file or "-") and keeps their summary rows, which every
program prints at its end (bench/bench.h):

    BENCHROW|<measure>|<refstore median>|<unit>|<peer>|<peer median>|<better>

<better> is "lower" when a smaller figure is better (times) and "higher"
when a larger one is (throughput, scaling).  Each row becomes one line of
the table, with the ratio turned so that above 1 means refstore did better:
peer / refstore for "lower", refstore / peer for "higher".

Prints the table, and writes into DIR (default build/bench):
  summary.md   the same table in Markdown, with the notes below it;
  ratios.dat   the ratios, one bar each, for gnuplot;
  ratios.gp    the gnuplot script that draws them;
  ratios.png   a horizontal bar chart of the ratios on a log axis, with a
               line at 1 (only when gnuplot is installed; otherwise the
               script says so and still exits 0).
Notes: lines of the outputs that say a peer was skipped, or that a result
was WRONG, and inputs that held no row.  Standard library only.  Exit
status 1 if no row at all was found, 2 on a usage error.
"""
import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys

GOOD = 0x2E7D32  # bar colours: refstore better ...
BAD = 0xC62828   # ... and refstore worse


class Row:
    def __init__(self, source, fields):
        (self.measure, rs, self.unit, self.peer, peer,
         self.better) = fields
        self.source = source
        self.rs_text, self.peer_text = rs, peer
        self.rs, self.peer_value = float(rs), float(peer)
        if self.better not in ("lower", "higher"):
            raise ValueError("better must be lower or higher")
        if not (self.rs > 0 and self.peer_value > 0):
            raise ValueError("figures must be positive")
        if self.better == "lower":
            self.ratio = self.peer_value / self.rs
        else:
            self.ratio = self.rs / self.peer_value


def source_name(path):
    """build/bench/bench_refcount.txt -> refcount"""
    base = os.path.basename(path)
    if base.endswith(".txt"):
        base = base[:-4]
    if base.startswith("bench_"):
        base = base[6:]
    return base


def read_rows(name, lines, rows, notes):
    found = 0
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        at = line.find("BENCHROW|")
        if at >= 0:
            fields = line[at + len("BENCHROW|"):].split("|")
            try:
                if len(fields) != 6:
                    raise ValueError("%d fields, expected 6" % len(fields))
                rows.append(Row(name, [f.strip() for f in fields]))
                found += 1
            except ValueError as e:
                print("report.py: %s:%d: bad row (%s): %s"
                      % (name, number, e, line), file=sys.stderr)
            continue
        low = line.lower()
        if "skipped" in low or "wrong" in line.split(":")[0].lower():
            notes.append("%s: %s" % (name, line.strip()))
    if not found:
        notes.append("%s: no BENCHROW line" % name)


def fmt_ratio(r):
    if r >= 100:
        return "%.0f" % r
    if r >= 10:
        return "%.1f" % r
    return "%.2f" % r


def table(rows):
    """The rows as lists of cells, header first."""
    out = [["bench", "measure", "refstore", "peer", "peer figure",
            "ratio"]]
    for r in rows:
        out.append([r.source, r.measure, "%s %s" % (r.rs_text, r.unit),
                    r.peer, "%s %s" % (r.peer_text, r.unit),
                    "%s×" % fmt_ratio(r.ratio)])
    return out


def print_table(cells):
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    right = {2, 4, 5}
    for k, row in enumerate(cells):
        parts = []
        for i, c in enumerate(row):
            parts.append(c.rjust(widths[i]) if i in right and k
                         else c.ljust(widths[i]))
        print("  ".join(parts).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        ncpu = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        ncpu = os.cpu_count() or 0
    return "%d CPUs%s, %s %s" % (ncpu, (" (%s)" % model) if model else "",
                                 platform.system(), platform.release())


def md_escape(s):
    return s.replace("|", "\\|")


def write_markdown(path, cells, notes, inputs):
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    with open(path, "w") as f:
        f.write("# make bench: refstore against its peers\n\n")
        f.write("Run of %s on %s. Inputs: %s.\n\n"
                % (now, machine(), ", ".join(inputs)))
        f.write("Figures are medians of repeated runs (each program's "
                "output, build/bench/<program>.txt, gives their [min–max]). "
                "The ratio is peer / refstore when lower is better and "
                "refstore / peer when higher is better: **above 1, refstore "
                "did better**.\n\n")
        f.write("| " + " | ".join(cells[0]) + " |\n")
        f.write("|" + "|".join(["---", "---", "---:", "---", "---:", "---:"])
                + "|\n")
        for row in cells[1:]:
            f.write("| " + " | ".join(md_escape(c) for c in row) + " |\n")
        if notes:
            f.write("\n## Notes\n\n")
            for n in notes:
                f.write("* %s\n" % md_escape(n))


def gp_string(s):
    """A double-quoted string for a gnuplot data file."""
    return '"%s"' % s.replace("\\", "/").replace('"', "'")


def write_chart(out_dir, rows):
    """ratios.dat and ratios.gp; ratios.png through gnuplot if installed.
    Returns a line saying what happened."""
    dat = os.path.join(out_dir, "ratios.dat")
    gp = os.path.join(out_dir, "ratios.gp")
    png = os.path.join(out_dir, "ratios.png")
    with open(dat, "w") as f:
        f.write("# index ratio bar_from bar_to colour label ratio_text\n")
        for i, r in enumerate(rows, 1):
            label = "%s: %s vs %s" % (r.source, r.measure, r.peer)
            if len(label) > 110:
                label = label[:107] + "..."
            f.write("%d %.6g %.6g %.6g %d %s %s\n"
                    % (i, r.ratio, min(1.0, r.ratio), max(1.0, r.ratio),
                       GOOD if r.ratio >= 1 else BAD, gp_string(label),
                       gp_string(fmt_ratio(r.ratio) + "x")))
    lo = min([r.ratio for r in rows] + [1.0]) / 2.5
    hi = max([r.ratio for r in rows] + [1.0]) * 2.5
    longest = max(len("%s: %s vs %s" % (r.source, r.measure, r.peer))
                  for r in rows)
    lmargin = min(longest, 110) * 0.82 + 3
    height = 110 + 22 * len(rows)
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    with open(gp, "w") as f:
        f.write("""# Drawn by bench/report.py: one bar per summary row, from 1 to the ratio
# (right of the line at 1: refstore better; log scale).
set terminal pngcairo noenhanced size 1700,%d font "sans,9"
set output %s
set title %s
set xlabel "ratio against the peer (> 1: refstore better), log scale"
set logscale x
set xrange [%.6g:%.6g]
set yrange [%.1f:0.4]
set lmargin %.0f
set ytics scale 0 nomirror
set grid xtics
set key off
set style fill solid 0.85 noborder
set arrow from 1, graph 0 to 1, graph 1 nohead lw 2 lc rgb "black" front
plot %s using (($3+$4)/2):1:3:4:($1-0.36):($1+0.36):5:ytic(6) \\
       with boxxyerror lc rgb variable, \\
     '' using ($2 >= 1 ? $4 : NaN):1:7 with labels left offset 0.6,0, \\
     '' using ($2 < 1 ? $3 : NaN):1:7 with labels right offset -0.6,0
""" % (height, gp_string(png), gp_string("refstore against its peers "
                                         "(make bench, %s)" % now),
       lo, hi, len(rows) + 0.6, lmargin, gp_string(dat)))
    if not shutil.which("gnuplot"):
        return "gnuplot not installed: no chart (%s and %s written)" % (dat,
                                                                         gp)
    try:
        done = subprocess.run(["gnuplot", gp], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return "gnuplot failed: %s" % e
    if done.returncode != 0 or not os.path.exists(png):
        return "gnuplot failed (status %d): %s" % (done.returncode,
                                                   done.stderr.strip())
    return "chart: %s" % png


def main():
    ap = argparse.ArgumentParser(
        description="Summary table and chart of the benchmarks' BENCHROW "
                    "lines.")
    ap.add_argument("--out", default=os.path.join("build", "bench"),
                    help="folder for summary.md and ratios.* "
                         "(default build/bench)")
    ap.add_argument("files", nargs="*", help="benchmark outputs; none or "
                    "'-': standard input")
    args = ap.parse_args()

    rows, notes, inputs = [], [], []
    for path in args.files or ["-"]:
        if path == "-":
            inputs.append("stdin")
            read_rows("stdin", sys.stdin, rows, notes)
            continue
        inputs.append(path)
        try:
            with open(path, errors="replace") as f:
                read_rows(source_name(path), f, rows, notes)
        except OSError as e:
            notes.append("%s: not read: %s" % (path, e.strerror))
    if not rows:
        print("report.py: no BENCHROW line in %s" % ", ".join(inputs),
              file=sys.stderr)
        for n in notes:
            print("  " + n, file=sys.stderr)
        return 1

    cells = table(rows)
    print("Summary: medians; ratio above 1 = refstore better "
          "(peer/refstore for times, refstore/peer for throughput)")
    print()
    print_table(cells)
    if notes:
        print()
        print("Notes:")
        for n in notes:
            print("  " + n)

    os.makedirs(args.out, exist_ok=True)
    md = os.path.join(args.out, "summary.md")
    write_markdown(md, cells, notes, inputs)
    print()
    print("summary: %s" % md)
    print(write_chart(args.out, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
