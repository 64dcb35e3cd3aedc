# The plot of docs/scan-cost.png: the /proc scan's cost against the number of
# processes. Called by scripts/bench.sh:
#   gnuplot -e "datafile='scan.dat'; outfile='scan-cost.png'; subtitle='...'" bench/scan-cost.gp
# scan.dat columns (bench/report.py): 1 sleepers, 2 /proc entries, 3 inspected,
# 4-7 total ms (floor, PROCMAP_QUERY walk, text walk, tg::scan_processes),
# 8-11 us per /proc entry (same order), 12 us per inspected process (scan_processes).
set terminal pngcairo size 1200,520 font ",11"
set output outfile
set multiplot layout 1,2 title "truncguard: who-maps-this scan (scope system) against the number of processes\n{/*0.8 ".subtitle."}"
set key top left
set grid
set logscale xy
set xlabel "processes (numeric /proc entries, incl. kernel threads)"
set ylabel "one scan, ms"
set format x "%g"
set format y "%g"
set xrange [50:2000]
plot datafile using 2:6 with linespoints lw 2 pt 7 title "text (/proc/PID/maps, 4 KiB preads)", \
     datafile using 2:7 with linespoints lw 2 pt 5 title "PROCMAP\\_QUERY (tg::scan\\_processes)", \
     datafile using 2:4 with linespoints lw 2 pt 9 dt 2 title "floor: open + close each maps file"
unset logscale y
set logscale x
set yrange [0:*]
set offsets 0, 0, graph 0.45, 0
set key top left
set ylabel "microseconds per process"
plot datafile using 2:10 with linespoints lw 2 pt 7 title "text, per /proc entry", \
     datafile using 2:11 with linespoints lw 2 pt 5 title "PROCMAP\\_QUERY, per /proc entry", \
     datafile using 2:12 with linespoints lw 2 pt 4 dt 3 title "PROCMAP\\_QUERY, per inspected user process", \
     datafile using 2:8 with linespoints lw 2 pt 9 dt 2 title "floor, per /proc entry", \
     10 with lines lw 1 lc rgb "red" dt 4 title "target: 10 us"
unset multiplot
