# demo_plot.gp - the demo's chart (bench/demo/files.c runs it after a run):
#
#   gnuplot -e "dir='build/demo'; have_rs=1; have_boehm=1; subtitle='...'" \
#           bench/demo_plot.gp
#
# reads dir/chart_pauses.dat and dir/chart_latency.dat, which the demo writes
# next to its raw samples, and draws dir/demo.png:
#   top     how many collector pauses of each length each side had (the pause
#           axis is logarithmic, 5 bins a decade; so is the count axis);
#   bottom  request latency over the run, per 100 ms window: p99 (thick) and
#           max (thin), both sides, logarithmic latency axis.
# Missing values are '-' (a side that did not run, a window without requests).

if (!exists("dir")) dir = "build/demo"
if (!exists("subtitle")) subtitle = ""
if (!exists("have_rs")) have_rs = 1
if (!exists("have_boehm")) have_boehm = 1

P = dir."/chart_pauses.dat"
L = dir."/chart_latency.dat"

set terminal pngcairo size 1100,900 font ",10"
set output dir."/demo.png"
set datafile missing "-"
set multiplot layout 2,1 title "refstore vs Boehm GC: collector pauses and request latency\n".subtitle

# top: the pause histograms
set title "collector pauses (count per bin; refstore: every collection, Boehm: every stop of the world)"
set logscale x 10
set logscale y 10
set yrange [0.8:*]
set xlabel "pause (microseconds)"
set ylabel "pauses"
set grid xtics ytics
set key top right
set style fill transparent solid 0.45 border
if (have_rs && have_boehm) {
	plot P using 3:($4 > 0 ? $4 : 1/0):1:2:(0.8):4 with boxxyerrorbars lc rgb "#1f77b4" title "refstore", \
	     P using 3:($5 > 0 ? $5 : 1/0):1:2:(0.8):5 with boxxyerrorbars lc rgb "#d62728" title "Boehm GC"
} else {
	if (have_rs) {
		plot P using 3:($4 > 0 ? $4 : 1/0):1:2:(0.8):4 with boxxyerrorbars lc rgb "#1f77b4" title "refstore"
	} else {
		plot P using 3:($5 > 0 ? $5 : 1/0):1:2:(0.8):5 with boxxyerrorbars lc rgb "#d62728" title "Boehm GC"
	}
}

# bottom: request latency over time
unset logscale x
set autoscale x
set autoscale y
set logscale y 10
set title "request latency per 100 ms window (p99 thick, max thin)"
set xlabel "time since the side's start (s)"
set ylabel "latency (microseconds)"
set key top left
if (have_rs && have_boehm) {
	plot L using 1:2 with lines lw 2 lc rgb "#1f77b4" title "refstore p99", \
	     L using 1:3 with lines lw 1 lc rgb "#6baed6" title "refstore max", \
	     L using 1:4 with lines lw 2 lc rgb "#d62728" title "Boehm p99", \
	     L using 1:5 with lines lw 1 lc rgb "#fc9272" title "Boehm max"
} else {
	if (have_rs) {
		plot L using 1:2 with lines lw 2 lc rgb "#1f77b4" title "refstore p99", \
		     L using 1:3 with lines lw 1 lc rgb "#6baed6" title "refstore max"
	} else {
		plot L using 1:4 with lines lw 2 lc rgb "#d62728" title "Boehm p99", \
		     L using 1:5 with lines lw 1 lc rgb "#fc9272" title "Boehm max"
	}
}

unset multiplot
