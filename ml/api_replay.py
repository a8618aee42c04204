"""The served top 10 through the public API, as an outside harness measures it.

Given a SQLite data set and the `rentgraph evaluate` report of it (which names the cutoff and
the evaluated users, with every method's per-user NDCG@10 on listings new to the user), this:
1. copies the database and rewinds the copy to the cutoff: interactions from the cutoff on are
   deleted, listings created after it are removed, listings that left the market after it are
   active again, and the per-listing counters are rebuilt;
2. starts `rentgraph serve` on the copy with the model under test (as an operator would, with
   the gate as sealed: what the server decides to serve is what is measured);
3. signs in as each evaluated user and asks `recommendations(first: 10)` over HTTP;
4. scores each answer against the user's hidden later likes, saves and inquiries on listings
   new to them, and compares with the report's best baseline on the same users (paired
   bootstrap), and with the replay's own number for the model.

Standard library only. Run from the repository root (the server finds ONNX Runtime in .ort/).
Usage:
  python3 ml/api_replay.py --pair data.db eval.json [--pair ...] [--bin target/release/rentgraph]
      [--model DIR] [--out api.json]
"""
import argparse
import base64
import concurrent.futures
import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from replay_summary import paired_ratio, NOT_BASELINES

# migration::REBUILD_PROPERTY_STATS, the statement `rentgraph seed` counts with (this script
# runs on the database file alone, without the binary's migration crate); keep them alike.
REBUILD_STATS = """INSERT INTO property_stats
    (property_id, views, likes, saves, inquiries, dismissals)
    SELECT property_id,
           SUM(CASE WHEN kind = 'VIEW' THEN 1 ELSE 0 END),
           SUM(CASE WHEN kind = 'LIKE' THEN 1 ELSE 0 END),
           SUM(CASE WHEN kind = 'SAVE' THEN 1 ELSE 0 END),
           SUM(CASE WHEN kind = 'INQUIRY' THEN 1 ELSE 0 END),
           SUM(CASE WHEN kind = 'DISMISS' THEN 1 ELSE 0 END)
    FROM interactions GROUP BY property_id"""
ENGAGES = ("LIKE", "SAVE", "INQUIRY")
QUERY = "{ recommendations(first: 10) { source property { id } } }"


def ts(text):
    """chrono's RFC 3339 text from the report, as the database stores it (sortable)."""
    return text.replace("Z", "+00:00")


def targets(con, cutoff):
    """Per user: listings they engaged with from the cutoff on, on the market then, that they
    had not touched before it."""
    on_market = {r[0] for r in con.execute(
        "SELECT id FROM properties WHERE created_at < ? AND (is_active OR updated_at > ?)",
        (cutoff, cutoff))}
    touched, later = {}, {}
    for user, prop, kind, at in con.execute(
            "SELECT user_id, property_id, kind, created_at FROM interactions"):
        if at < cutoff:
            touched.setdefault(user, set()).add(prop)
        elif kind in ENGAGES and prop in on_market:
            later.setdefault(user, set()).add(prop)
    return {u: t - touched.get(u, set()) for u, t in later.items()}


def rewind(path, cutoff):
    con = sqlite3.connect(path)
    con.execute("DELETE FROM interactions WHERE created_at >= ?", (cutoff,))
    newer = "(SELECT id FROM properties WHERE created_at >= ?)"
    for table in ["property_images", "property_amenities", "property_stats"]:
        con.execute(f"DELETE FROM {table} WHERE property_id IN {newer}", (cutoff,))
    con.execute("DELETE FROM properties WHERE created_at >= ?", (cutoff,))
    con.execute("UPDATE properties SET is_active = 1 WHERE updated_at > ?", (cutoff,))
    con.execute("DELETE FROM property_stats")
    con.execute(REBUILD_STATS)
    con.commit()
    con.close()


def ndcg(ranked, relevant, k=10):
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, x in enumerate(ranked[:k]) if x in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal


def decode(gid):
    raw = base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode()
    return uuid.UUID(raw.split(":", 1)[1]).bytes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_ask(args, db_path, report):
    """The served top 10 of each of the report's users, through the API of a server on a copy
    of `db_path` rewound to the report's cutoff: (per-user NDCG@10 on new listings, sources
    served, what /ready said)."""
    cutoff = ts(report["cutoff"])
    users = report["new_to_user_users"]
    work = tempfile.mkdtemp(prefix="rg_api_replay_")
    try:
        db = os.path.join(work, "rewound.db")
        shutil.copy(db_path, db)
        con = sqlite3.connect(db_path)
        hidden = targets(con, cutoff)
        con.close()
        rewind(db, cutoff)
        port = free_port()
        env = dict(os.environ)
        env.update({
            "RENTGRAPH__DATABASE__URL": f"sqlite://{db}?mode=rwc",
            "RENTGRAPH__DATABASE__SEED_IF_EMPTY": "false",
            "RENTGRAPH__SERVER__PORT": str(port),
            "RENTGRAPH__SERVER__HOST": "127.0.0.1",
            "RENTGRAPH__LIMITS__THROTTLE": "false",
            "RENTGRAPH__ML__INDEX_REFRESH_SECS": "0",
        })
        if args.model:
            env["RENTGRAPH__ML__MODEL_PATH"] = os.path.join(args.model, "recommender.onnx")
            env["RENTGRAPH__ML__INFO_PATH"] = os.path.join(args.model, "recommender.json")
        ids = os.path.join(work, "users.txt")
        with open(ids, "w") as f:
            f.write("\n".join(users) + "\n")
        tokens = subprocess.run([args.bin, "token", "--users-file", ids, "--role", "USER"],
                                env=env, check=True, capture_output=True, text=True).stdout.split()
        log = open(os.path.join(work, "server.log"), "w")
        server = subprocess.Popen([args.bin, "serve"], env=env, stdout=log, stderr=log)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if urllib.request.urlopen(base + "/ready", timeout=2).status == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            else:
                log.flush()
                sys.exit("the server did not become ready:\n" + open(log.name).read()[-3000:])
            ready = json.load(urllib.request.urlopen(base + "/ready", timeout=5))

            def ask(i):
                req = urllib.request.Request(
                    base + "/graphql", data=json.dumps({"query": QUERY}).encode(),
                    headers={"content-type": "application/json",
                             "authorization": f"Bearer {tokens[i]}"})
                body = json.load(urllib.request.urlopen(req, timeout=30))
                recs = body["data"]["recommendations"]
                return [decode(r["property"]["id"]) for r in recs], \
                    sorted({r["source"] for r in recs})

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(ask, range(len(users))))
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    served = [ndcg(ranked, hidden.get(uuid.UUID(u).bytes, set()))
              for u, (ranked, _) in zip(users, answers)]
    return served, {s for _, src in answers for s in src}, ready.get("recommender")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pair", nargs=2, action="append", required=True, metavar=("DB", "REPORT"),
                    help="a SQLite data set and its `rentgraph evaluate` report (repeatable: "
                         "users are pooled)")
    ap.add_argument("--bin", default="target/release/rentgraph")
    ap.add_argument("--model", help="a directory with recommender.onnx and recommender.json")
    ap.add_argument("--out")
    args = ap.parse_args()
    served, sources, per_user, recommender = [], set(), {}, None
    for db, path in args.pair:
        report = json.load(open(path))
        s, src, recommender = serve_and_ask(args, db, report)
        served += s
        sources |= src
        for m, v in report["new_to_user_ndcg_per_user"].items():
            per_user.setdefault(m, []).extend(v)
    baselines = [m for m in per_user if m not in NOT_BASELINES]
    mean = lambda v: sum(v) / len(v) if v else 0.0
    best = max(baselines, key=lambda m: (mean(per_user[m]), m))
    sources = sorted(sources)
    out = {
        "users": len(served),
        "served_sources": sources,
        "recommender": recommender,
        "served_ndcg@10_new": round(mean(served), 4),
        "replayed_model_ndcg@10_new": round(mean(per_user["model"]), 4),
        "best_baseline": best,
        "best_baseline_ndcg@10_new": round(mean(per_user[best]), 4),
        "served_vs_best_baseline": paired_ratio(served, per_user[best]),
        "served_vs_replayed_model": paired_ratio(served, per_user["model"]),
    }
    v = out["served_vs_best_baseline"]
    print(f"through the API, {len(served)} users, served {'/'.join(sources)}: "
          f"NDCG@10 new {out['served_ndcg@10_new']:.4f} (replay said "
          f"{out['replayed_model_ndcg@10_new']:.4f}); best baseline {best} "
          f"{out['best_baseline_ndcg@10_new']:.4f}; served / best {v['ratio']} {v['ci95']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
