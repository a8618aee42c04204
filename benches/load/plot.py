"""Plots throughput and p99 latency against concurrency from benches/load/run.sh's results
(the "sweep" rows) as one SVG, with the standard library only.

Usage: python3 benches/load/plot.py target/load/results.csv docs/load.svg
"""
import csv
import math
import sys

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def series(path):
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if not row["scenario"].startswith("sweep "):
                continue
            name = row["scenario"][len("sweep "):]
            out.setdefault(name, []).append(
                (int(row["connections"]), float(row["req_s"]), float(row["p99_ms"]))
            )
    return {k: sorted(v) for k, v in out.items()}


def panel(x0, y0, w, h, title, data, pick, log_y):
    """One chart: x = connections (log2), y = pick(point)."""
    xs = sorted({c for pts in data.values() for c, _, _ in pts})
    ys = [pick(p) for pts in data.values() for p in pts]
    if not xs or not ys:
        return []
    lo_x, hi_x = math.log2(min(xs)), math.log2(max(xs))
    top = max(ys) * 1.1
    bottom = min(ys) / 1.5 if log_y else 0.0
    tr_y = (lambda v: math.log10(max(v, 1e-9))) if log_y else (lambda v: v)

    def px(c):
        return x0 + 50 + (math.log2(c) - lo_x) / max(hi_x - lo_x, 1e-9) * (w - 70)

    def py(v):
        return y0 + h - 30 - (tr_y(v) - tr_y(bottom)) / max(tr_y(top) - tr_y(bottom), 1e-9) * (h - 60)

    s = [f'<text x="{x0 + w / 2}" y="{y0 + 16}" text-anchor="middle" font-weight="bold">{title}</text>',
         f'<line x1="{x0 + 50}" y1="{y0 + h - 30}" x2="{x0 + w - 20}" y2="{y0 + h - 30}" stroke="#444"/>',
         f'<line x1="{x0 + 50}" y1="{y0 + 30}" x2="{x0 + 50}" y2="{y0 + h - 30}" stroke="#444"/>']
    for c in xs:
        s.append(f'<text x="{px(c)}" y="{y0 + h - 14}" text-anchor="middle">{c}</text>')
    ticks = [bottom + (top - bottom) * i / 4 for i in range(5)]
    if log_y:
        ticks = [m * 10 ** e for e in range(math.floor(tr_y(bottom)), math.ceil(tr_y(top)) + 1)
                 for m in (1, 2, 5) if bottom <= m * 10 ** e <= top]
    for t in ticks:
        s.append(f'<text x="{x0 + 46}" y="{py(t) + 4}" text-anchor="end">{t:,.0f}</text>')
        s.append(f'<line x1="{x0 + 50}" y1="{py(t)}" x2="{x0 + w - 20}" y2="{py(t)}" stroke="#eee"/>')
    for i, (name, pts) in enumerate(sorted(data.items())):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(c):.1f},{py(pick((c, r, p))):.1f}" for c, r, p in pts)
        s.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for c, r, p in pts:
            s.append(f'<circle cx="{px(c):.1f}" cy="{py(pick((c, r, p))):.1f}" r="3" fill="{colour}"/>')
        s.append(f'<text x="{x0 + 60}" y="{y0 + 36 + 14 * i}" fill="{colour}">{name}</text>')
    s.append(f'<text x="{x0 + w / 2}" y="{y0 + h}" text-anchor="middle">connections</text>')
    return s


def main():
    data = series(sys.argv[1])
    w, h = 480, 340
    body = panel(0, 0, w, h, "throughput (req/s, log)", data, lambda p: p[1], True)
    body += panel(w, 0, w, h, "p99 latency (ms, log)", data, lambda p: p[2], True)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h + 10}" '
           f'font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>'
           + "".join(body) + "</svg>\n")
    with open(sys.argv[2], "w") as f:
        f.write(svg)


if __name__ == "__main__":
    main()
